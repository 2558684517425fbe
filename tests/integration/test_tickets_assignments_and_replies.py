"""Routing's assignments and flags, and customers' replies, through the batch handlers on real databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from contracts.commands import (
    AssignTicket,
    AssignTicketData,
    FlagTicket,
    FlagTicketData,
)
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import (
    Channel,
    CustomerProfile,
    IncidentIdentified,
    IncidentIdentifiedData,
)
from runtime.consumer import Delivery
from services.tickets.adapters import event_store, read_model, repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.domain import Actor, Status
from services.tickets.handlers import apply_commands, open_tickets, ticket_id_for

ADA = CustomerProfile(identified=True, identified_by="email", customer_id="c-1", email="ada@example.com")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[TicketDatabase]:
    database = TicketDatabase(database_url)
    await database.create_tables()
    yield database
    await database.close()


def incident(
    message_id: str, *, customer: CustomerProfile = ADA, reply_to: str | None = None, text: str = "Since Monday"
) -> IncidentIdentified:
    data = IncidentIdentifiedData(
        channel=Channel.EMAIL,
        channel_message_id=message_id,
        received_at=datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
        subject="VPN drops every hour",
        description=text,
        customer=customer,
        reply_to_number=reply_to,
    )
    return new_envelope(IncidentIdentified, data, correlation_id=f"contact-{message_id}")  # type: ignore[return-value]


def deliveries(*messages: Envelope[Any]) -> list[Delivery[Any]]:
    return [Delivery(m, "topic", 0, offset, None) for offset, m in enumerate(messages)]


async def stored(db: TicketDatabase) -> list[Envelope[Any]]:
    async with db.reader.connect() as conn:
        return [e.message for e in await event_store.read_after(conn, 0, 10_000)]


async def row_of(db: TicketDatabase, ticket_id: uuid.UUID) -> dict[str, Any]:
    async with db.reader.connect() as conn:
        result = await conn.execute(select(read_model.tickets).where(read_model.tickets.c.ticket_id == ticket_id))
        return dict(result.one()._mapping)


async def opened(db: TicketDatabase, message_id: str = "m-1", **kwargs: Any) -> tuple[uuid.UUID, str]:
    message = incident(message_id, **kwargs)
    await open_tickets(db, lambda: None)(deliveries(message))
    ticket_id = ticket_id_for(message.data)
    return ticket_id, (await row_of(db, ticket_id))["number"]


def assign(ticket_id: uuid.UUID, agent_id: str) -> Envelope[Any]:
    data = AssignTicketData(agent_id=agent_id, strategy="round_robin", reason="next in the rota")
    return new_envelope(AssignTicket, data, ticket_id=ticket_id, correlation_id="contact-m-1")


def flag(ticket_id: uuid.UUID, name: str) -> Envelope[Any]:
    data = FlagTicketData(flag=name, reason="80% of the deadline used", raised_by="escalation")
    return new_envelope(FlagTicket, data, ticket_id=ticket_id, correlation_id="contact-m-1")


async def test_an_assign_command_gives_the_ticket_to_the_agent(db: TicketDatabase) -> None:
    ticket_id, _ = await opened(db)
    command = assign(ticket_id, "agent-7")
    handle = apply_commands(db, lambda: None)
    await handle(deliveries(command))
    await handle(deliveries(command, assign(ticket_id, "agent-7")))  # redelivered, and the same assignment again
    assert [e.type for e in await stored(db)] == ["ticket.opened", "ticket.assigned"]
    row = await row_of(db, ticket_id)
    assert (row["status"], row["assignee"], row["version"]) == ("in_progress", "agent-7", 2)


async def test_flags_are_kept_as_a_set_on_the_read_model(db: TicketDatabase) -> None:
    ticket_id, _ = await opened(db)
    await apply_commands(db, lambda: None)(
        deliveries(flag(ticket_id, "sla_warning"), flag(ticket_id, "vip"), flag(ticket_id, "sla_warning"))
    )
    assert [e.type for e in await stored(db)] == ["ticket.opened", "ticket.flagged", "ticket.flagged"]
    assert (await row_of(db, ticket_id))["flags"] == ["sla_warning", "vip"]


async def test_a_reply_from_the_same_customer_is_recorded_on_the_ticket(db: TicketDatabase) -> None:
    ticket_id, number = await opened(db)
    reply = incident("m-2", reply_to=number, text="It dropped again at 10:00")
    wakes: list[int] = []
    await open_tickets(db, lambda: wakes.append(1))(deliveries(reply))
    events = await stored(db)
    assert [e.type for e in events] == ["ticket.opened", "ticket.customer_replied"]
    replied = events[1]
    assert replied.ticket_id == ticket_id and replied.causation_id == str(reply.event_id)
    assert (replied.data.channel_message_id, replied.data.text, replied.data.version) == (
        "m-2",
        "It dropped again at 10:00",
        2,
    )
    assert (await row_of(db, ticket_id))["version"] == 2
    assert wakes == [1]


async def test_a_redelivered_reply_adds_nothing(db: TicketDatabase) -> None:
    _, number = await opened(db)
    reply = incident("m-2", reply_to=number)
    handle = open_tickets(db, lambda: None)
    await handle(deliveries(reply, reply))
    await handle(deliveries(reply))
    assert [e.type for e in await stored(db)] == ["ticket.opened", "ticket.customer_replied"]


async def test_two_replies_in_one_batch_are_both_recorded_in_order(db: TicketDatabase) -> None:
    _, number = await opened(db)
    await open_tickets(db, lambda: None)(deliveries(incident("m-2", reply_to=number), incident("m-3", reply_to=number)))
    replies = [e for e in await stored(db) if e.type == "ticket.customer_replied"]
    assert [(e.data.channel_message_id, e.data.version) for e in replies] == [("m-2", 2), ("m-3", 3)]


async def test_a_reply_from_another_customer_opens_a_ticket_of_its_own(db: TicketDatabase) -> None:
    _, number = await opened(db)
    eve = CustomerProfile(identified=True, identified_by="email", customer_id="c-2", email="eve@example.com")
    await open_tickets(db, lambda: None)(deliveries(incident("m-2", customer=eve, reply_to=number)))
    assert [e.type for e in await stored(db)] == ["ticket.opened", "ticket.opened"]


async def test_a_reply_to_a_number_that_does_not_exist_opens_a_ticket(db: TicketDatabase) -> None:
    await open_tickets(db, lambda: None)(deliveries(incident("m-2", reply_to="HD-999999")))
    assert [e.type for e in await stored(db)] == ["ticket.opened"]


async def test_an_unidentified_customer_replies_from_the_same_address(db: TicketDatabase) -> None:
    bob = CustomerProfile(identified=False, email="bob@example.com")
    ticket_id, number = await opened(db, customer=bob)
    await open_tickets(db, lambda: None)(deliveries(incident("m-2", customer=bob, reply_to=number)))
    events = await stored(db)
    assert [(e.type, e.ticket_id) for e in events] == [
        ("ticket.opened", ticket_id),
        ("ticket.customer_replied", ticket_id),
    ]


async def wait_on_the_customer(db: TicketDatabase, ticket_id: uuid.UUID) -> None:
    """Claim the ticket and wait on the customer, as its owner would through the API."""
    async with db.writer.begin() as conn:
        ticket = (await repository.load_tickets(conn, [ticket_id]))[ticket_id]
        for decide in (lambda t: t.claim("alice"), lambda t: t.change_status(Actor("alice"), Status.WAITING_ON_CUSTOMER)):
            change = repository.Change.of(ticket, repository.recorded(ticket_id, decide(ticket), at=datetime.now(UTC)))
            await repository.save(conn, [change])
            ticket = change.ticket


async def test_a_reply_on_a_channel_puts_a_ticket_waiting_on_the_customer_back_in_progress(db: TicketDatabase) -> None:
    ticket_id, number = await opened(db)
    await wait_on_the_customer(db, ticket_id)
    handle = open_tickets(db, lambda: None)
    # Two replies in one batch: the first ends the wait, the second finds the ticket in progress.
    await handle(deliveries(incident("m-2", reply_to=number), incident("m-3", reply_to=number)))
    events = await stored(db)
    assert [e.type for e in events[3:]] == ["ticket.customer_replied", "ticket.status_changed", "ticket.customer_replied"]
    back = events[4]
    assert (back.data.status, back.data.previous_status, back.data.by) == ("in_progress", "waiting_on_customer", "customer")
    assert back.causation_id == events[3].causation_id, "recorded with the reply, caused by the same contact"
    row = await row_of(db, ticket_id)
    assert (row["status"], row["assignee"], row["version"]) == ("in_progress", "alice", 6)


async def close(db: TicketDatabase, ticket_id: uuid.UUID) -> None:
    """Claim, resolve and close the ticket as an agent would (through the repository, as the API does)."""
    async with db.writer.begin() as conn:
        ticket = (await repository.load_tickets(conn, [ticket_id]))[ticket_id]
        for decide in (
            lambda t: t.claim("alice"),
            lambda t: t.resolve("alice", "reset"),
            lambda t: t.close(Actor("alice")),
        ):
            events = repository.recorded(ticket_id, decide(ticket), at=datetime.now(UTC))
            change = repository.Change.of(ticket, events)
            await repository.save(conn, [change])
            ticket = change.ticket


async def test_a_reply_to_a_closed_ticket_opens_a_new_one_but_a_recorded_reply_stays_recorded(
    db: TicketDatabase,
) -> None:
    ticket_id, number = await opened(db)
    recorded = incident("m-2", reply_to=number)
    handle = open_tickets(db, lambda: None)
    await handle(deliveries(recorded))
    await close(db, ticket_id)
    await handle(deliveries(recorded))  # redelivered after closing: still the reply it was
    assert [e.type for e in await stored(db) if e.type in ("ticket.opened", "ticket.customer_replied")] == [
        "ticket.opened",
        "ticket.customer_replied",
    ]
    late = incident("m-3", reply_to=number)
    await handle(deliveries(late))
    events = await stored(db)
    assert events[-1].type == "ticket.opened" and events[-1].ticket_id == ticket_id_for(late.data)


async def merge(db: TicketDatabase, source_id: uuid.UUID, into_id: uuid.UUID) -> None:
    """Merge as an agent does through the API: both tickets' events in one transaction."""
    async with db.writer.begin() as conn:
        tickets = await repository.load_tickets(conn, [source_id, into_id])
        mine, theirs = tickets[source_id].merge(Actor("alice"), tickets[into_id], "the same outage")
        at = datetime.now(UTC)
        await repository.save(
            conn,
            [
                repository.Change.of(tickets[source_id], repository.recorded(source_id, mine, at=at)),
                repository.Change.of(tickets[into_id], repository.recorded(into_id, theirs, at=at)),
            ],
        )


async def test_a_reply_to_a_merged_ticket_is_recorded_on_the_ticket_it_was_merged_into(db: TicketDatabase) -> None:
    source_id, source_number = await opened(db, "m-1")
    into_id, _ = await opened(db, "m-2")
    early = incident("m-3", reply_to=source_number)
    handle = open_tickets(db, lambda: None)
    await handle(deliveries(early))  # before the merge: on the ticket it names
    await merge(db, source_id, into_id)
    late = incident("m-4", reply_to=source_number, text="Still down")
    await handle(deliveries(late, early))  # the early reply redelivered with it: recognised where it is
    await handle(deliveries(late))  # and the late one redelivered: recorded once
    replies = [(e.ticket_id, e.data.channel_message_id) for e in await stored(db) if e.type == "ticket.customer_replied"]
    assert replies == [(source_id, "m-3"), (into_id, "m-4")]
    assert [e.type for e in await stored(db)].count("ticket.opened") == 2


async def test_another_customers_reply_to_a_merged_ticket_opens_its_own(db: TicketDatabase) -> None:
    source_id, source_number = await opened(db, "m-1")
    into_id, _ = await opened(db, "m-2")
    await merge(db, source_id, into_id)
    stranger = CustomerProfile(identified=True, identified_by="email", customer_id="c-2", email="eve@example.com")
    await open_tickets(db, lambda: None)(deliveries(incident("m-3", reply_to=source_number, customer=stranger)))
    assert [e.type for e in await stored(db)].count("ticket.opened") == 3
    assert "ticket.customer_replied" not in [e.type for e in await stored(db)]
