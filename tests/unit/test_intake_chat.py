"""The chat widget's frames: what they become, and arbitrary input refused cleanly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.channels.chat import ChatFrameError, Line, Start, opening_incident, parse_frame, reply_incident

NOW = datetime(2026, 3, 14, 9, 26, tzinfo=UTC)


def test_a_start_frame_opens_the_conversations_incident() -> None:
    start = parse_frame(
        '{"type": "start", "conversation_id": "c1", "contact": {"email": "a@example.com"}, "text": "Wi-Fi down\\nin room 4"}',
        Start,
    )
    data = opening_incident(start, NOW)  # type: ignore[arg-type]
    assert (data.channel.value, data.channel_message_id, data.subject) == ("chat", "c1", "Wi-Fi down")
    assert data.contact.email == "a@example.com" and data.reply_to_number is None


def test_a_later_line_is_a_reply_with_its_own_id() -> None:
    start = parse_frame('{"type": "start", "conversation_id": "c1", "contact": {}, "text": "x"}', Start)
    line = parse_frame('{"type": "line", "id": "7", "text": "still down"}', Line)
    data = reply_incident(start, line, "HD-3", NOW)  # type: ignore[arg-type]
    assert (data.channel_message_id, data.reply_to_number, data.description) == ("c1/7", "HD-3", "still down")


@pytest.mark.parametrize("raw", ['{"type": "line", "text": ""}', '{"type": "start", "text": "x"}', "[]", "x" * 30_000])
def test_frames_that_are_not_what_is_expected_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(ChatFrameError):
        parse_frame(raw, Start if "start" in raw else Line)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000), st.sampled_from([Start, Line]))
def test_arbitrary_text_is_parsed_or_refused_never_crashes(raw: str, expected: type[Start] | type[Line]) -> None:
    try:
        parse_frame(raw, expected)
    except ChatFrameError:
        pass
