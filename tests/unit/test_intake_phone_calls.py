"""CTI call events: parsed strictly, and turned into the call's incident and its end."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.adapters.calls import Call
from services.intake.channels.cti import (
    CallEnded,
    MalformedCallEvent,
    call_ended_reply,
    opening_incident,
    parse_call_event,
)

NOW = datetime(2026, 3, 14, 9, 26, tzinfo=UTC)
CALL = Call("c-1", "020 7946 0018", NOW, components=("vpn",), urgency="high", agent_id="agent-7")


def test_an_answered_call_is_an_incident_from_the_caller_with_the_ivr_choices() -> None:
    data = opening_incident(CALL, NOW)
    assert (data.channel.value, data.channel_message_id, data.contact.phone) == ("phone", "c-1", "020 7946 0018")
    assert (data.components, data.urgency, data.received_at) == (["vpn"], "high", NOW)
    assert data.subject == "Phone call (vpn)" and "answered by agent-7" in data.description


def test_a_missed_call_says_so_and_asks_for_a_call_back() -> None:
    data = opening_incident(CALL.but(agent_id=None), NOW, abandoned_after_s=75)
    assert data.subject == "Missed call (vpn)" and "hung up after 1 min 15 s. Call back." in data.description


def test_the_end_of_a_call_is_a_reply_on_its_ticket() -> None:
    ended = CallEnded(event="call.ended", call_id="c-1", duration_s=312, summary="Reset the token")
    data = call_ended_reply(CALL, ended, "HD-9", NOW)
    assert (data.channel_message_id, data.reply_to_number) == ("c-1/ended", "HD-9")
    assert data.description == "Call ended after 5 min 12 s (agent agent-7).\n\nReset the token"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"event": "call.started", "call_id": "c"}', "caller"),
        (b'{"event": "call.hold", "call_id": "c"}', "event"),
        (b'{"event": "call.ivr", "call_id": "c", "urgency": "asap"}', "urgency"),
        (b'{"event": "call.ended", "call_id": "c", "duration_s": -1}', "duration_s"),
        (b"nope", "body"),
    ],
)
def test_a_bad_event_is_refused_naming_the_field(body: bytes, says: str) -> None:
    with pytest.raises(MalformedCallEvent, match=says):
        parse_call_event(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1000))
def test_arbitrary_bytes_are_parsed_or_refused_never_crash(body: bytes) -> None:
    try:
        parse_call_event(body)
    except MalformedCallEvent:
        pass
