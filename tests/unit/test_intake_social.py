"""Social media: Meta's webhook signature and events, and the generic JSON format."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.channels.meta import MalformedSocial, incident_from_generic, incidents_from_meta, signed_by_meta

NOW = datetime(2026, 3, 14, 9, 26, tzinfo=UTC)


def delivery(*events: dict, obj: str = "page") -> bytes:
    return json.dumps({"object": obj, "entry": [{"id": "PAGE", "time": 1, "messaging": list(events)}]}).encode()


def message(mid: str, text: str, sender: str = "4242", **extra: object) -> dict:
    return {
        "sender": {"id": sender},
        "recipient": {"id": "PAGE"},
        "timestamp": 1,
        "message": {"mid": mid, "text": text, **extra},
    }


def test_the_signature_is_hmac_sha256_of_the_raw_body_with_the_app_secret() -> None:
    body = delivery(message("m1", "hi"))
    header = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    assert signed_by_meta("app-secret", body, header)
    assert not signed_by_meta("other", body, header)
    assert not signed_by_meta("app-secret", body + b" ", header)
    assert not signed_by_meta("app-secret", body, "")


def test_each_customer_message_is_an_incident_and_echoes_and_reads_are_not() -> None:
    body = delivery(
        message("m1", "My order app crashes\nwhen I pay", attachments=[{"type": "image", "payload": {"url": "u"}}]),
        message("m2", "we are on it", is_echo=True),
        {"sender": {"id": "4242"}, "read": {"watermark": 1}},
        message("m3", "re HD-77: still crashing", sender="999"),
    )
    first, second = incidents_from_meta(body, NOW)
    assert (first.channel.value, first.channel_message_id, first.contact.social_handle) == (
        "social",
        "m1",
        "facebook:4242",
    )
    assert first.subject == "My order app crashes" and [a.content_type for a in first.attachments] == ["image/*"]
    assert (second.channel_message_id, second.reply_to_number) == ("m3", "HD-77")


def test_instagram_senders_are_instagram_handles() -> None:
    [data] = incidents_from_meta(delivery(message("ig1", "hello"), obj="instagram"), NOW)
    assert data.contact.social_handle == "instagram:4242"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"object": "page", "entry": 1}',
        json.dumps(
            {"object": "page", "entry": [{"messaging": [{"message": {"text": "no mid"}, "sender": {"id": "1"}}]}]}
        ).encode(),
    ],
)
def test_what_is_not_a_meta_message_delivery_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedSocial):
        incidents_from_meta(body, NOW)


def test_a_generic_mention_becomes_an_incident_from_its_author() -> None:
    body = json.dumps({"platform": "mastodon", "kind": "mention", "message_id": "1099", "author": {"handle": "@ada@mastodon.example", "name": "Ada"},
                       "text": "@helpdesk the portal is down", "url": "https://mastodon.example/@ada/1099"}).encode()  # fmt: skip
    data = incident_from_generic(body, NOW)
    assert (data.channel_message_id, data.contact.social_handle, data.contact.name) == (
        "mastodon:1099",
        "@ada@mastodon.example",
        "Ada",
    )
    assert data.description.endswith("https://mastodon.example/@ada/1099")


def test_a_generic_message_with_a_wrong_field_is_refused_with_the_field() -> None:
    with pytest.raises(MalformedSocial, match="kind"):
        incident_from_generic(
            b'{"platform": "x", "kind": "like", "message_id": "1", "author": {"handle": "@a"}, "text": "t"}', NOW
        )


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=2000), st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["object", "entry", "messaging", "message", "sender", "id", "mid", "text", "is_echo", "attachments", "type"]), inner, max_size=5),
       max_leaves=30).map(lambda v: json.dumps(v).encode())))  # fmt: skip
def test_arbitrary_bodies_are_read_or_refused_never_crash(body: bytes) -> None:
    for parse in (incidents_from_meta, incident_from_generic):
        try:
            parse(body, NOW)
        except MalformedSocial:
            pass
