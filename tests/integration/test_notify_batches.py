"""Notify's ticket-event consumer, a batch at a time, on both databases and a real
SMTP server (no broker needed): a resolution already mailed is not mailed again
beside new ones, a ticket's opening and resolution in one batch give one e-mail,
and the events notify does not act on cost no SQL at all.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event

from contracts.envelope import new_envelope
from contracts.incidents import Channel, CustomerProfile
from contracts.tickets import (
    TicketClaimed,
    TicketClaimedData,
    TicketEscalated,
    TicketEscalatedData,
    TicketOpened,
    TicketOpenedData,
    TicketPrioritised,
    TicketPrioritisedData,
    TicketResolved,
    TicketResolvedData,
    TicketRouted,
    TicketRoutedData,
)
from runtime.consumer import Delivery
from services.notify.adapters.smtp import SmtpMailer
from services.notify.adapters.store import NotifyStore
from services.notify.config import Settings
from services.notify.handlers import Outbox, TicketEventHandler
from services.notify.rendering import Templates
from tests.support.smtp_sink import SmtpSink


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
    return TicketEventHandler(store, Outbox(store, mailer, Templates()))


def batch(*events: Any) -> list[Delivery[Any]]:
    return [Delivery(e, "helpdesk.tickets.events.v1", 0, n, None) for n, e in enumerate(events)]


def opened(ticket: uuid.UUID, email: str | None, subject: str = "Printer on fire") -> Any:
    data = TicketOpenedData(
        number="HD-5", version=1, channel=Channel.EMAIL, channel_message_id=f"m-{ticket}",
        reported_at=datetime.now(UTC), subject=subject, description="smoke",
        customer=CustomerProfile(identified=False, email=email, name="Ada"),
    )
    return new_envelope(TicketOpened, data, ticket_id=ticket)


def resolved(ticket: uuid.UUID) -> Any:
    data = TicketResolvedData(number="HD-5", version=5, resolution="Replaced the fuser.", resolved_by="agent-7")
    return new_envelope(TicketResolved, data, ticket_id=ticket)


def ignored_events(ticket: uuid.UUID) -> list[Any]:
    return [
        new_envelope(TicketPrioritised, TicketPrioritisedData(
            number="HD-5", version=2, priority=2, rule="m", reason="x", by="routing"), ticket_id=ticket),
        new_envelope(TicketRouted, TicketRoutedData(
            number="HD-5", version=3, queue="hardware", rule="r", reason="x"), ticket_id=ticket),
        new_envelope(TicketClaimed, TicketClaimedData(number="HD-5", version=4, agent_id="agent-7"), ticket_id=ticket),
        new_envelope(TicketEscalated, TicketEscalatedData(
            number="HD-5", version=5, level=2, queue="L2-specialists", reason="late"), ticket_id=ticket),
    ]


def skipped(reason: str) -> float:
    return REGISTRY.get_sample_value("helpdesk_notify_skipped_total", {"reason": reason}) or 0.0


async def test_a_batch_holding_a_resolution_already_mailed_mails_only_the_new_one(
    handler: TicketEventHandler, sink: SmtpSink
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    first_resolved = resolved(first)
    await handler(batch(opened(first, "ada@example.com"), opened(second, "bob@example.com"), first_resolved))
    await sink.wait_for(1)
    already = skipped("already_sent")
    await handler(batch(first_resolved, resolved(second)))
    await sink.wait_for(2)
    await asyncio.sleep(0.2)
    assert [m.rcpt_tos for m in sink.messages] == [("ada@example.com",), ("bob@example.com",)]
    assert skipped("already_sent") == already + 1


async def test_an_opening_and_a_repeated_resolution_of_one_ticket_in_one_batch_mail_once(
    handler: TicketEventHandler, sink: SmtpSink
) -> None:
    ticket = uuid.uuid4()
    done = resolved(ticket)
    await handler(batch(opened(ticket, "ada@example.com"), *ignored_events(ticket), done, done))
    [mail] = await sink.wait_for(1)
    await asyncio.sleep(0.2)
    assert len(sink.messages) == 1
    assert mail.message["Message-ID"] == f"<resolved.{done.event_id}.HD-5@helpdesk>"
    assert mail.message["Subject"] == "[HD-5] Resolved: Printer on fire"


async def test_a_batch_mixing_tickets_mails_each_customer_with_a_known_address(
    handler: TicketEventHandler, sink: SmtpSink
) -> None:
    with_address, without_address, never_opened = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    no_email = skipped("no_customer_email")
    await handler(batch(
        opened(with_address, "ada@example.com"), opened(without_address, None),
        resolved(never_opened), resolved(without_address), resolved(with_address),
    ))
    [mail] = await sink.wait_for(1)
    await asyncio.sleep(0.2)
    assert len(sink.messages) == 1 and mail.rcpt_tos == ("ada@example.com",)
    assert skipped("no_customer_email") == no_email + 2


async def test_a_redelivered_opening_keeps_the_contact_first_stored(handler: TicketEventHandler, sink: SmtpSink) -> None:
    ticket = uuid.uuid4()
    await handler(batch(opened(ticket, "ada@example.com", "Printer on fire")))
    # Twice in one batch, and differing (which a real redelivery never does): the first contact stays.
    later = opened(ticket, "mallory@example.com", "Something else")
    await handler(batch(later, later, resolved(ticket)))
    [mail] = await sink.wait_for(1)
    assert mail.rcpt_tos == ("ada@example.com",)
    assert mail.message["Subject"] == "[HD-5] Resolved: Printer on fire"


async def test_a_batch_of_events_notify_does_not_act_on_runs_no_sql(
    store: NotifyStore, handler: TicketEventHandler, sink: SmtpSink
) -> None:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    for engine in {store.writer, store.reader}:
        event.listen(engine.sync_engine, "before_cursor_execute", count)
    await handler(batch(*ignored_events(uuid.uuid4()), *ignored_events(uuid.uuid4())))
    assert statements == []
    await handler(batch(opened(uuid.uuid4(), "ada@example.com")))
    assert statements != []  # the counter does see the consumer's statements
    assert sink.messages == []
