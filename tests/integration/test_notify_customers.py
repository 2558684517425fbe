"""What the customer receives, through notify's ticket-event consumer, a real SMTP server
and both databases: the acknowledgement of a new ticket (once), replies threaded under
the customer's first mail, the customer's language, and public notes (not internal ones).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.envelope import new_envelope
from contracts.incidents import Channel, CustomerProfile
from contracts.tickets import (
    TicketMerged,
    TicketMergedData,
    TicketNoteAdded,
    TicketNoteAddedData,
    TicketOpened,
    TicketOpenedData,
    TicketResolved,
    TicketResolvedData,
)
from runtime.consumer import Delivery
from services.intake.replies import number_in, number_in_thread
from services.notify.adapters.smtp import SmtpMailer
from services.notify.adapters.store import NotifyStore
from services.notify.config import Settings
from services.notify.handlers import Outbox, TicketEventHandler
from services.notify.rendering import Templates
from tests.support.smtp_sink import SmtpSink

FIRST_MAIL = "<CAF00d1e@mail.example.com>"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[NotifyStore]:
    notify_store = NotifyStore(database_url)
    await notify_store.create_schema()
    yield notify_store
    await notify_store.close()


@pytest.fixture
def handler(store: NotifyStore, sink: SmtpSink) -> TicketEventHandler:
    mailer = SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=sink.port, smtp_timeout_s=5))
    return TicketEventHandler(store, Outbox(store, mailer, Templates()), acknowledge=True,
                              reply_to="support@helpdesk.example")


def batch(*events: Any) -> list[Delivery[Any]]:
    return [Delivery(e, "helpdesk.tickets.events.v1", 0, n, None) for n, e in enumerate(events)]


def opened(ticket: uuid.UUID, channel: Channel = Channel.EMAIL) -> Any:
    data = TicketOpenedData(
        number="HD-21", version=1, channel=channel, channel_message_id=FIRST_MAIL if channel == Channel.EMAIL else "w-1",
        reported_at=datetime.now(UTC), subject="VPN drops", description="every hour",
        customer=CustomerProfile(identified=False, email="ada@example.com", name="Ada"),
    )
    return new_envelope(TicketOpened, data, ticket_id=ticket)


def note(ticket: uuid.UUID, visibility: str, text: str) -> Any:
    data = TicketNoteAddedData(number="HD-21", version=3, text=text, author="alice", visibility=visibility)  # type: ignore[arg-type]
    return new_envelope(TicketNoteAdded, data, ticket_id=ticket)


async def test_a_new_ticket_is_acknowledged_once_with_its_number_threaded_under_the_customers_mail(
    handler: TicketEventHandler, sink: SmtpSink
) -> None:
    ticket = uuid.uuid4()
    event = opened(ticket)
    await handler(batch(event))
    await handler(batch(event))  # redelivered
    [ack] = await sink.wait_for(1)
    await asyncio.sleep(0.2)
    assert len(sink.messages) == 1
    assert ack.rcpt_tos == ("ada@example.com",)
    assert ack.message["Subject"] == "[HD-21] Received: VPN drops"
    assert ack.message["In-Reply-To"] == FIRST_MAIL and ack.message["References"] == FIRST_MAIL
    assert "opened ticket HD-21" in ack.text and "support@helpdesk.example" in ack.text
    # What intake reads from the customer's answer to it:
    assert number_in(f"Re: {ack.message['Subject']}") == "HD-21"
    assert number_in_thread([ack.message["Message-ID"]]) == "HD-21"


async def test_the_resolution_follows_the_same_thread(handler: TicketEventHandler, sink: SmtpSink) -> None:
    ticket = uuid.uuid4()
    done = new_envelope(TicketResolved, TicketResolvedData(number="HD-21", version=5, resolution="New firmware.",
                                                           resolved_by="alice"), ticket_id=ticket)
    await handler(batch(opened(ticket), done))
    mails = await sink.wait_for(2)
    resolution = next(m for m in mails if "Resolved" in m.message["Subject"])
    assert resolution.message["References"] == FIRST_MAIL
    assert resolution.message["Message-ID"] == f"<resolved.{done.event_id}.HD-21@helpdesk>"


async def test_a_merged_ticket_tells_the_customer_where_the_work_goes_on_once_and_not_why(
    handler: TicketEventHandler, sink: SmtpSink
) -> None:
    ticket = uuid.uuid4()
    merged = new_envelope(
        TicketMerged,
        TicketMergedData(number="HD-21", version=4, into_ticket_id=uuid.uuid4(), into_number="HD-7",
                         reason="duplicate of the outage ticket, customer is noisy", merged_by="alice"),
        ticket_id=ticket,
    )
    await handler(batch(opened(ticket), merged))
    await handler(batch(merged))  # redelivered
    mails = await sink.wait_for(2)
    await asyncio.sleep(0.2)
    assert len(sink.messages) == 2
    joined = next(m for m in mails if "Joined" in m.message["Subject"])
    assert joined.message["Subject"] == "[HD-21] Joined to HD-7: VPN drops"
    assert joined.message["References"] == FIRST_MAIL
    assert "HD-7" in joined.text and "noisy" not in joined.text  # the desk's reason stays the desk's
    assert number_in(f"Re: {joined.message['Subject']}") == "HD-21"  # a reply names HD-21; tickets follows the merge


async def test_a_public_note_is_mailed_to_the_customer_and_an_internal_one_is_not(
    handler: TicketEventHandler, sink: SmtpSink
) -> None:
    ticket = uuid.uuid4()
    public = note(ticket, "public", "An engineer comes at 3pm.")
    await handler(batch(opened(ticket, Channel.WEB), note(ticket, "internal", "customer is grumpy"), public))
    await handler(batch(public))  # redelivered
    mails = await sink.wait_for(2)
    await asyncio.sleep(0.2)
    assert [m.message["Subject"] for m in sink.messages] == ["[HD-21] Received: VPN drops", "[HD-21] Update: VPN drops"]
    assert "An engineer comes at 3pm." in mails[1].text and "grumpy" not in mails[1].text
    assert mails[1].message["In-Reply-To"] is None  # a web ticket has no customer mail to answer


async def test_without_acknowledgements_configured_an_opening_sends_nothing(
    store: NotifyStore, sink: SmtpSink
) -> None:
    mailer = SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=sink.port, smtp_timeout_s=5))
    await TicketEventHandler(store, Outbox(store, mailer, Templates()))(batch(opened(uuid.uuid4())))
    await asyncio.sleep(0.3)
    assert sink.messages == []
