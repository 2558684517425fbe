"""The ticket service's batch handlers on real databases: redelivery changes nothing.

The handlers are called exactly as the runtime calls them, with the batches a
consumer would hand over (a redelivery is the same message handed over again).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts.commands import EscalateTicket, EscalateTicketData, RouteTicket, RouteTicketData
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import Channel, CustomerProfile, IncidentIdentified, IncidentIdentifiedData
from runtime.consumer import Delivery, PoisonMessage
from services.tickets.adapters import event_store, read_model, repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.handlers import apply_commands, open_tickets, ticket_id_for


class Wakes:
    """Counts how often the handlers told the relay there is something new."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[TicketDatabase]:
    database = TicketDatabase(database_url)
    await database.create_tables()
    yield database
    await database.close()


def incident(message_id: str, channel: Channel = Channel.EMAIL) -> IncidentIdentified:
    data = IncidentIdentifiedData(
        channel=channel,
        channel_message_id=message_id,
        received_at=datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
        subject="VPN drops every hour",
        description="Since Monday",
        components=["vpn"],
        customer=CustomerProfile(identified=True, identified_by="email", customer_id="c-1", email="ada@example.com"),
    )
    return new_envelope(IncidentIdentified, data, correlation_id=f"contact-{message_id}")  # type: ignore[return-value]


def route(ticket_id: uuid.UUID, priority: int = 2, queue: str = "network") -> Envelope[Any]:
    data = RouteTicketData(
        priority=priority,  # type: ignore[arg-type]
        priority_rule="impact",
        priority_reason="business impacted",
        queue=queue,
        queue_rule="component",
        queue_reason="vpn",
    )
    return new_envelope(RouteTicket, data, ticket_id=ticket_id, correlation_id="contact-m-1")


def escalate(ticket_id: uuid.UUID, level: int) -> Envelope[Any]:
    data = EscalateTicketData(level=level, queue=f"level-{level}", reason="no claim in 15 min", deadline=datetime.now(UTC))
    return new_envelope(EscalateTicket, data, ticket_id=ticket_id, correlation_id="contact-m-1")


def deliveries(*messages: Envelope[Any]) -> list[Delivery[Any]]:
    return [Delivery(m, "topic", 0, offset, None) for offset, m in enumerate(messages)]


async def stored(db: TicketDatabase) -> list[Envelope[Any]]:
    async with db.reader.connect() as conn:
        return [e.message for e in await event_store.read_after(conn, 0, 10_000)]


async def count(db: TicketDatabase, table: Any) -> int:
    async with db.reader.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_a_redelivered_incident_opens_one_ticket(db: TicketDatabase) -> None:
    wakes = Wakes()
    handle = open_tickets(db, wakes)
    message = incident("m-1")
    await handle(deliveries(message, message))  # twice in one batch
    await handle(deliveries(message))  # and again later
    events = await stored(db)
    assert [e.type for e in events] == ["ticket.opened"]
    assert events[0].ticket_id == ticket_id_for(message.data)
    assert await count(db, read_model.tickets) == 1
    assert await count(db, event_store.ticket_numbers) == 1
    assert wakes.count == 1


async def test_an_opened_tickets_event_carries_the_incidents_correlation_and_causation(db: TicketDatabase) -> None:
    message = incident("m-1")
    await open_tickets(db, Wakes())(deliveries(message))
    (opened,) = await stored(db)
    assert opened.correlation_id == "contact-m-1"
    assert opened.causation_id == str(message.event_id)
    assert opened.data.number.startswith("HD-") and opened.data.version == 1
    assert opened.data.customer.customer_id == "c-1"
    assert opened.data.reported_at == message.data.received_at


async def test_the_same_message_id_on_another_channel_is_another_ticket(db: TicketDatabase) -> None:
    await open_tickets(db, Wakes())(deliveries(incident("42", Channel.SMS), incident("42", Channel.CHAT)))
    events = await stored(db)
    assert len({e.ticket_id for e in events}) == 2
    assert len({e.data.number for e in events}) == 2


async def test_a_redelivered_command_changes_nothing(db: TicketDatabase) -> None:
    await open_tickets(db, Wakes())(deliveries(incident("m-1")))
    ticket_id = ticket_id_for(incident("m-1").data)
    command = route(ticket_id)
    handle = apply_commands(db, Wakes())
    await handle(deliveries(command))
    after_first = await stored(db)
    await handle(deliveries(command, command))
    assert await stored(db) == after_first
    assert [e.type for e in after_first] == ["ticket.opened", "ticket.prioritised", "ticket.routed"]
    assert {e.causation_id for e in after_first[1:]} == {str(command.event_id)}
    assert await count(db, event_store.processed_commands) == 1


async def test_a_new_route_for_a_routed_ticket_records_only_what_changed(db: TicketDatabase) -> None:
    await open_tickets(db, Wakes())(deliveries(incident("m-1")))
    ticket_id = ticket_id_for(incident("m-1").data)
    handle = apply_commands(db, Wakes())
    await handle(deliveries(route(ticket_id, 2, "network"), route(ticket_id, 2, "security")))
    events = await stored(db)
    assert [(e.type, e.data.version) for e in events] == [
        ("ticket.opened", 1),
        ("ticket.prioritised", 2),
        ("ticket.routed", 3),
        ("ticket.routed", 4),
    ]
    async with db.reader.connect() as conn:
        (row,) = await read_model.queue_line(conn, "security", 10)
    assert (row["priority"], row["version"]) == (2, 4)


async def test_a_command_the_rules_reject_is_recorded_as_processed_and_not_retried(db: TicketDatabase) -> None:
    await open_tickets(db, Wakes())(deliveries(incident("m-1")))
    ticket_id = ticket_id_for(incident("m-1").data)
    handle = apply_commands(db, Wakes())
    await handle(deliveries(escalate(ticket_id, 2)))
    rejected = escalate(ticket_id, 2)  # a different command: same level again
    await handle(deliveries(rejected))  # returns normally: nothing to retry, nothing to dead-letter
    assert [e.type for e in await stored(db)] == ["ticket.opened", "ticket.escalated"]
    async with db.reader.connect() as conn:
        outcome = (
            await conn.execute(
                select(event_store.processed_commands.c.outcome).where(
                    event_store.processed_commands.c.command_id == rejected.event_id
                )
            )
        ).scalar_one()
    assert outcome == "rejected:escalation_must_raise_level"


async def test_commands_for_one_ticket_in_one_batch_apply_in_order(db: TicketDatabase) -> None:
    wakes = Wakes()
    await open_tickets(db, wakes)(deliveries(incident("m-1")))
    ticket_id = ticket_id_for(incident("m-1").data)
    await apply_commands(db, wakes)(deliveries(route(ticket_id, 3, "network"), escalate(ticket_id, 2), escalate(ticket_id, 3)))
    async with db.reader.connect() as conn:
        ticket = (await repository.load(conn, [ticket_id]))[ticket_id].ticket
    assert (ticket.version, ticket.priority, ticket.level, ticket.queue) == (5, 3, 3, "level-3")
    assert wakes.count == 2


async def test_a_command_for_an_unknown_ticket_is_poison_and_stores_nothing(db: TicketDatabase) -> None:
    await open_tickets(db, Wakes())(deliveries(incident("m-1")))
    known = ticket_id_for(incident("m-1").data)
    with pytest.raises(PoisonMessage, match="unknown ticket"):
        await apply_commands(db, Wakes())(deliveries(route(known), route(uuid.uuid4())))
    assert [e.type for e in await stored(db)] == ["ticket.opened"]
    assert await count(db, event_store.processed_commands) == 0
