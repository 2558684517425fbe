"""The files a contact came with, from intake's incident into the ticket's events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.incidents import Attachment, Channel, CustomerProfile, IncidentIdentifiedData
from contracts.registry import parse_message
from contracts.tickets import TicketOpened
from services.tickets.adapters.repository import recorded
from services.tickets.domain import Ticket, open_ticket

AT = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
PHOTO = Attachment(filename="router.jpg", content_type="image/jpeg", size_bytes=201_344)


def incident(attachments: list[Attachment]) -> IncidentIdentifiedData:
    return IncidentIdentifiedData(
        channel=Channel.SMS,
        channel_message_id="SM1",
        received_at=AT,
        subject="Router lights all red",
        customer=CustomerProfile(identified=False, phone="+447700900123"),
        attachments=attachments,
    )


def test_the_opening_event_carries_every_attachment_intake_parsed() -> None:
    opened = open_ticket("HD-1", incident([PHOTO, Attachment(content_type="video/mp4")]))
    assert opened.attachments == [PHOTO, Attachment(content_type="video/mp4")]
    [message] = recorded(uuid.uuid4(), [opened], at=AT)
    assert parse_message(message.model_dump_json(), (TicketOpened,)) == message  # kept through the topic


def test_a_reply_carries_its_attachments() -> None:
    ticket = Ticket.from_events(uuid.uuid4(), [open_ticket("HD-1", incident([]))])
    [replied] = ticket.record_reply(
        channel=Channel.SMS, channel_message_id="SM2", received_at=AT, text="Photo attached", attachments=[PHOTO]
    )
    assert replied.attachments == [PHOTO]


def test_an_event_without_attachments_is_written_without_the_field() -> None:
    assert "attachments" not in open_ticket("HD-1", incident([])).model_dump_json()
    assert '"attachments":[{"filename":"router.jpg"' in open_ticket("HD-1", incident([PHOTO])).model_dump_json()
