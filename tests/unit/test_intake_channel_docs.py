"""What the integrator pages under docs/intake/ show is what intake accepts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from contracts.incidents import DirectoryCustomerUpdated
from services.intake.channels.chat import Start, parse_frame
from services.intake.channels.cti import parse_call_event
from services.intake.channels.meta import incident_from_generic, incidents_from_meta

DOCS = Path(__file__).resolve().parents[2] / "docs" / "intake"
NOW = datetime(2026, 3, 14, 9, 26, tzinfo=UTC)


def json_blocks(page: str) -> list[str]:
    return re.findall(r"```json\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_documented_directory_message_is_a_valid_directory_customer_updated() -> None:
    [block] = [b for b in json_blocks("directory.md") if "directory.customer_updated" in b]
    message = DirectoryCustomerUpdated.model_validate_json(block)
    assert message.data.user_id == "u-1001" and message.data.vip


def test_the_documented_generic_social_message_is_accepted() -> None:
    [block] = [b for b in json_blocks("social.md") if '"platform"' in b]
    assert incident_from_generic(block.encode(), NOW).channel_message_id == "mastodon:109912345678"


def test_the_documented_mention_and_page_comment_deliveries_are_accepted() -> None:
    [mention] = [b for b in json_blocks("social.md") if '"mentions"' in b]
    [comment] = [b for b in json_blocks("social.md") if '"feed"' in b]
    [from_mention] = incidents_from_meta(mention.encode(), NOW)
    [from_comment] = incidents_from_meta(comment.encode(), NOW)
    assert from_mention.channel_message_id == "instagram:comment:17894227972186120"
    assert (from_comment.channel_message_id, from_comment.contact.social_handle) == (
        "facebook:comment:200_300",
        "facebook:4242",
    )


def test_the_documented_call_events_are_accepted() -> None:
    [block] = [b for b in json_blocks("phone.md") if "call.started" in b]
    events = [parse_call_event(line.encode()) for line in block.strip().splitlines()]
    assert [e.event for e in events] == ["call.started", "call.ivr", "call.answered", "call.ended"]


def test_the_documented_chat_start_frame_is_accepted() -> None:
    [block] = [b for b in json_blocks("chat.md") if '"start"' in b]
    start = parse_frame(" ".join(block.split()), Start)
    assert start.text == "The VPN drops every ten minutes"  # type: ignore[union-attr]


def test_every_channel_has_an_integrators_page_linked_from_the_overview() -> None:
    overview = (DOCS.parent / "intake.md").read_text(encoding="utf-8")
    for page in ("email.md", "sms.md", "chat.md", "social.md", "phone.md", "directory.md"):
        assert (DOCS / page).exists() and f"intake/{page}" in overview, page
