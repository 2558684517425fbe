"""Meta's changes webhooks: Instagram mentions and Facebook Page posts and comments become incidents."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from contracts.incidents import Channel
from services.intake.channels.meta import MalformedSocial, incidents_from_meta
from services.intake.flood import sender_of

NOW = datetime(2026, 3, 14, 9, 26, tzinfo=UTC)


def changes(obj: str, *changes: dict, account: str = "17841400000000001") -> bytes:
    return json.dumps(
        {"object": obj, "entry": [{"id": account, "time": 1773480000, "changes": list(changes)}]}
    ).encode()


def mention(**value: object) -> dict:
    return {"field": "mentions", "value": value}


def feed(**value: object) -> dict:
    return {"field": "feed", "value": value}


def test_an_instagram_comment_mention_with_only_ids_records_them_for_the_agent() -> None:
    [data] = incidents_from_meta(
        changes("instagram", mention(media_id="17918195224117851", comment_id="17894227972186120")), NOW
    )
    assert (data.channel.value, data.channel_message_id) == ("social", "instagram:comment:17894227972186120")
    assert data.contact.social_handle is None and data.subject == "Instagram mention in a comment"
    assert "17918195224117851" in data.description and "17894227972186120" in data.description
    assert "mentioned_comment.comment_id(17894227972186120)" in data.description


def test_a_caption_mention_is_one_incident_per_media_and_has_no_sender_for_the_flood_guard() -> None:
    [data] = incidents_from_meta(changes("instagram", mention(media_id="1790001")), NOW)
    assert data.channel_message_id == "instagram:media:1790001"
    assert "mentioned_media.media_id(1790001)" in data.description
    assert sender_of(Channel.SOCIAL.value, data.contact) is None  # not one bucket per post: not counted


def test_a_mention_that_carries_its_sender_and_text_uses_them() -> None:
    body = changes("instagram", mention(media_id="1", comment_id="2", text="@acme checkout fails, see HD-41",
                                        **{"from": {"id": "9001", "username": "ada_l"}}))  # fmt: skip
    [data] = incidents_from_meta(body, NOW)
    assert (data.contact.social_handle, data.contact.name) == ("instagram:9001", "@ada_l")
    assert (data.subject, data.reply_to_number) == ("@acme checkout fails, see HD-41", "HD-41")
    assert sender_of(Channel.SOCIAL.value, data.contact) == "social:instagram:9001"  # counted like any contact


def test_a_comment_on_the_page_is_an_incident_from_its_author() -> None:
    body = changes("page", feed(item="comment", verb="add", post_id="100_200", comment_id="200_300",
                                message="The app logs me out\nevery hour", created_time=1773480000,
                                **{"from": {"id": "4242", "name": "Ada Lovelace"}}), account="100")  # fmt: skip
    [data] = incidents_from_meta(body, NOW)
    assert (data.channel_message_id, data.contact.social_handle, data.contact.name) == (
        "facebook:comment:200_300",
        "facebook:4242",
        "Ada Lovelace",
    )
    assert data.subject == "The app logs me out" and "https://www.facebook.com/100_200" in data.description


def test_a_visitor_post_is_an_incident_keyed_by_the_post() -> None:
    body = changes("page", feed(item="status", verb="add", post_id="100_777", message="Is the shop down?",
                                **{"from": {"id": "55"}}), account="100")  # fmt: skip
    [data] = incidents_from_meta(body, NOW)
    assert (data.channel_message_id, data.contact.social_handle) == ("facebook:post:100_777", "facebook:55")


@pytest.mark.parametrize(
    "value",
    [
        {"item": "comment", "verb": "edited", "post_id": "1_2", "comment_id": "2_3", "from": {"id": "7"}},
        {"item": "comment", "verb": "remove", "post_id": "1_2", "comment_id": "2_3", "from": {"id": "7"}},
        {"item": "reaction", "verb": "add", "post_id": "1_2", "reaction_type": "like", "from": {"id": "7"}},
        {"item": "comment", "verb": "add", "post_id": "1_2", "comment_id": "2_4", "from": {"id": "100"}},
    ],
    ids=["edit", "removal", "reaction", "the-pages-own-answer"],
)
def test_edits_removals_reactions_and_the_pages_own_comments_are_not_contacts(value: dict) -> None:
    assert incidents_from_meta(changes("page", feed(**value), account="100"), NOW) == []


def test_other_fields_and_mentions_on_the_wrong_platform_are_ignored() -> None:
    body = changes(
        "instagram",
        {"field": "story_insights", "value": {"media_id": "1", "reach": 3}},
        feed(item="post", verb="add", post_id="1"),
    )
    assert incidents_from_meta(body, NOW) == []
    assert incidents_from_meta(changes("page", mention(media_id="1")), NOW) == []


@pytest.mark.parametrize(
    "change",
    [
        mention(comment_id="2"),
        mention(media_id=True),
        feed(item="comment", verb="add", post_id="1_2", **{"from": {"id": "7"}}),
    ],
    ids=["no-media", "media-not-an-id", "comment-without-id"],
)
def test_a_mention_or_comment_without_its_ids_is_refused(change: dict) -> None:
    with pytest.raises(MalformedSocial, match="needs"):
        incidents_from_meta(changes("instagram" if change["field"] == "mentions" else "page", change), NOW)


def test_messages_and_changes_in_one_delivery_are_all_read() -> None:
    body = json.dumps({"object": "instagram", "entry": [
        {"id": "1", "time": 1, "messaging": [{"sender": {"id": "5"}, "message": {"mid": "m-1", "text": "hi"}}]},
        {"id": "1", "time": 1, "changes": [mention(media_id="10", comment_id="11")]},
    ]}).encode()  # fmt: skip
    assert [d.channel_message_id for d in incidents_from_meta(body, NOW)] == ["m-1", "instagram:comment:11"]
