"""Arbitrary input to the incident, customer, import and Meta-changes parsers: a clean refusal, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake.api import Rejected, _parse
from services.intake.channels.meta import MalformedSocial, incidents_from_meta
from services.intake.customers_api import _customer
from services.intake.directory_import import rows, validate


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_posted_as_an_incident_are_refused_cleanly(body: bytes) -> None:
    try:
        _parse(body)
    except Rejected as rejected:
        assert rejected.status in (400, 422)


def test_deeply_nested_json_is_a_400_not_a_crash() -> None:
    with pytest.raises(Rejected) as refused:
        _parse(b"[" * 200_000)
    assert refused.value.status == 400


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_put_as_a_customer_are_refused_cleanly(body: bytes) -> None:
    try:
        _customer("u-1", body, "GB")
    except Rejected as rejected:
        assert rejected.status in (400, 422)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=2000))
def test_an_arbitrary_csv_is_read_row_by_row_and_each_row_imported_or_rejected(tmp_path: Path, text: str) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("user_id,name,email,phone,social_handles,vip\n" + text, encoding="utf-8", errors="surrogatepass")
    try:
        for row in rows(path):
            try:
                validate(row, "GB")
            except ValueError:
                pass
    except UnicodeDecodeError:
        pass  # the command reports an unreadable file (exit status 2)


_CHANGE_KEYS = ["object", "entry", "id", "time", "changes", "field", "value", "media_id", "comment_id", "from",
                "username", "text", "item", "verb", "post_id", "message", "name"]  # fmt: skip
_WORDS = st.sampled_from(["instagram", "page", "mentions", "feed", "comment", "post", "add"])
_LEAVES = st.none() | st.booleans() | st.integers() | _WORDS | st.text(max_size=20)
_JSON = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_CHANGE_KEYS), inner, max_size=6),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=2000), _JSON.map(lambda v: json.dumps(v).encode())))
def test_arbitrary_meta_mentions_and_feed_changes_are_read_or_refused_never_crash(body: bytes) -> None:
    try:
        contacts = incidents_from_meta(body, datetime(2026, 3, 14, tzinfo=UTC))
    except MalformedSocial:
        return
    for data in contacts:
        assert data.channel_message_id and data.subject


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["instagram", "page"]),
    st.dictionaries(st.sampled_from(_CHANGE_KEYS), _LEAVES | st.dictionaries(st.sampled_from(_CHANGE_KEYS), _LEAVES)),
)
def test_arbitrary_change_values_in_a_well_formed_delivery_never_crash(obj: str, value: dict) -> None:
    field = "mentions" if obj == "instagram" else "feed"
    body = json.dumps({"object": obj, "entry": [{"id": "1", "changes": [{"field": field, "value": value}]}]}).encode()
    try:
        incidents_from_meta(body, datetime(2026, 3, 14, tzinfo=UTC))
    except MalformedSocial:
        pass
