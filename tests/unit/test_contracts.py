"""The contracts: decoding, the envelope, the registry and the generated documents."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from contracts import docs
from contracts.envelope import new_envelope
from contracts.incidents import IncidentReported, IncidentReportedData
from contracts.registry import ALL_MESSAGES, InvalidMessage, parse_message
from contracts.tickets import TicketClaimed, TicketClaimedData
from contracts.topics import ALL_TOPICS


def _incident(**overrides: object) -> IncidentReported:
    data = {"channel": "web", "channel_message_id": "m-1", "received_at": datetime.now(UTC), "subject": "Printer on fire"}
    data.update(overrides)
    return new_envelope(IncidentReported, IncidentReportedData(**data))  # type: ignore[return-value]


def test_a_message_survives_the_round_trip_through_bytes() -> None:
    message = _incident()
    assert parse_message(message.model_dump_json().encode()) == message


def test_a_caused_message_inherits_the_correlation_id_and_names_its_cause() -> None:
    cause = _incident()
    effect = new_envelope(TicketClaimed, TicketClaimedData(number="HD-1", version=2, agent_id="alice"), causation=cause, ticket_id=uuid.uuid4())
    assert effect.correlation_id == cause.correlation_id
    assert effect.causation_id == str(cause.event_id)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"not json at all", "not a helpdesk message envelope"),
        (b'{"type": "ticket.teleported", "schema_version": 1}', "unknown message type 'ticket.teleported'"),
        (b'{"type": "incident.reported", "schema_version": 9}', "unknown message type 'incident.reported' version 9"),
    ],
)
def test_bytes_that_are_not_our_message_are_rejected_with_the_reason(raw: bytes, says: str) -> None:
    with pytest.raises(InvalidMessage, match=says):
        parse_message(raw)


def test_an_invalid_field_is_named_in_the_error() -> None:
    raw = json.loads(_incident().model_dump_json())
    raw["data"]["subject"] = ""
    with pytest.raises(InvalidMessage, match=r"data\.subject"):
        parse_message(json.dumps(raw))


def test_a_consumer_refuses_a_message_type_it_does_not_accept() -> None:
    with pytest.raises(InvalidMessage, match="not accepted here"):
        parse_message(_incident().model_dump_json(), accepted=(TicketClaimed,))


def test_unknown_fields_are_an_error_not_silently_dropped() -> None:
    raw = json.loads(_incident().model_dump_json())
    raw["data"]["surprise"] = 1
    with pytest.raises(InvalidMessage, match="surprise"):
        parse_message(json.dumps(raw))


def test_every_topic_name_carries_a_version_suffix_and_every_message_has_a_topic() -> None:
    on_topics = {m for t in ALL_TOPICS for m in t.messages}
    assert all(t.name.rsplit(".", 1)[-1].startswith("v") for t in ALL_TOPICS)
    assert set(ALL_MESSAGES) == on_topics


def test_the_checked_in_asyncapi_and_json_schemas_are_current() -> None:
    assert docs.stale_files() == [], "run: python -m contracts.docs"
