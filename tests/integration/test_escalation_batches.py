"""Escalation's consumer, a batch at a time, on both databases (no broker needed):
redelivered events change nothing, one ticket's events in a batch build on each
other, events that move no deadline cost no SQL, and the timer's "fired" never
crosses a deadline the consumer is changing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, func, select

from contracts.envelope import new_envelope
from contracts.incidents import Channel, CustomerProfile
from contracts.tickets import (
    TicketClaimed,
    TicketClaimedData,
    TicketEscalated,
    TicketEscalatedData,
    TicketFlagged,
    TicketFlaggedData,
    TicketOpened,
    TicketOpenedData,
    TicketPrioritised,
    TicketPrioritisedData,
    TicketRouted,
    TicketRoutedData,
)
from runtime.consumer import Delivery
from services.escalation.adapters.store import DeadlineStore, processed_events
from services.escalation.config import SHIPPED_LEVELS
from services.escalation.domain.deadline import Deadline, DeadlineState
from services.escalation.domain.policy import EscalationPolicy
from services.escalation.handlers import TicketEventHandler
from services.escalation.levels import load_levels
from services.escalation.retention import ProcessedEventsRetention

AFTER = timedelta(minutes=15)
NOW = datetime.now(UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[DeadlineStore]:
    deadline_store = DeadlineStore(database_url)
    await deadline_store.create_schema()
    yield deadline_store
    await deadline_store.close()


@pytest.fixture
def handler(store: DeadlineStore) -> TicketEventHandler:
    return TicketEventHandler(store, EscalationPolicy(load_levels(SHIPPED_LEVELS), AFTER), FixedClock())


def batch(*events: Any) -> list[Delivery[Any]]:
    return [Delivery(e, "helpdesk.tickets.events.v1", 0, n, None) for n, e in enumerate(events)]


def opened(ticket: uuid.UUID, at: datetime = NOW) -> Any:
    data = TicketOpenedData(
        number=f"HD-{ticket.int % 1000}", version=1, channel=Channel.EMAIL, channel_message_id=f"m-{ticket}",
        reported_at=at, subject="Printer on fire", description="", customer=CustomerProfile(identified=False),
    )
    return new_envelope(TicketOpened, data, ticket_id=ticket, occurred_at=at)


def prioritised(ticket: uuid.UUID) -> Any:
    data = TicketPrioritisedData(number="HD-1", version=2, priority=3, rule="matrix", reason="x", by="routing")
    return new_envelope(TicketPrioritised, data, ticket_id=ticket)


def flagged(ticket: uuid.UUID) -> Any:
    data = TicketFlaggedData(number="HD-1", version=5, flag="vip", reason="x", raised_by="agent-1")
    return new_envelope(TicketFlagged, data, ticket_id=ticket, occurred_at=NOW)


def routed(ticket: uuid.UUID, queue: str = "hardware") -> Any:
    return new_envelope(TicketRouted, TicketRoutedData(number="HD-1", version=3, queue=queue, rule="r", reason="x"),
                        ticket_id=ticket)


def claimed(ticket: uuid.UUID) -> Any:
    return new_envelope(TicketClaimed, TicketClaimedData(number="HD-1", version=4, agent_id="agent-7"),
                        ticket_id=ticket)


def escalated(ticket: uuid.UUID, level: int, queue: str, at: datetime) -> Any:
    data = TicketEscalatedData(number="HD-1", version=4, level=level, queue=queue, reason="unclaimed")
    return new_envelope(TicketEscalated, data, ticket_id=ticket, occurred_at=at)


async def deadline_of(store: DeadlineStore, ticket: uuid.UUID) -> tuple[int, str | None, str] | None:
    found = await store.of_ticket(ticket)
    return (found[0].level, found[0].queue, found[0].state.value) if found else None


async def test_a_batch_holding_an_event_already_applied_skips_it(
    store: DeadlineStore, handler: TicketEventHandler
) -> None:
    ticket, other = uuid.uuid4(), uuid.uuid4()
    to_hardware = routed(ticket, "hardware")
    await handler(batch(opened(ticket), to_hardware))
    await handler(batch(escalated(ticket, 2, "L2-specialists", NOW)))
    # The routing redelivered beside new work: applied again, it would move the ticket back to "hardware".
    await handler(batch(to_hardware, opened(other)))
    assert await deadline_of(store, ticket) == (2, "L2-specialists", "pending")
    assert await deadline_of(store, other) == (1, None, "pending")


async def test_several_events_of_one_ticket_in_one_batch_end_where_they_would_one_by_one(
    store: DeadlineStore, handler: TicketEventHandler
) -> None:
    together, apart = uuid.uuid4(), uuid.uuid4()
    at = NOW + timedelta(minutes=16)

    def life(ticket: uuid.UUID) -> list[Any]:
        return [opened(ticket), prioritised(ticket), routed(ticket), escalated(ticket, 2, "L2-specialists", at)]

    await handler(batch(*life(together)))
    for one in life(apart):
        await handler(batch(one))
    [deadline] = await store.of_ticket(together)
    assert (deadline.level, deadline.queue, deadline.due_at) == (2, "L2-specialists", at + AFTER)
    assert await deadline_of(store, together) == await deadline_of(store, apart)


async def test_a_batch_mixing_tickets_and_repeating_an_event_applies_each_event_once(
    store: DeadlineStore, handler: TicketEventHandler
) -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await handler(batch(opened(c)))
    a_routed = routed(a, "network")
    await handler(batch(opened(a), opened(b), a_routed, claimed(b), a_routed, routed(c), prioritised(a)))
    assert await deadline_of(store, a) == (1, "network", "pending")
    assert await deadline_of(store, b) is None  # claimed: no deadline left
    assert await deadline_of(store, c) == (1, "hardware", "pending")
    async with store.reader.connect() as conn:
        recorded = (await conn.execute(select(func.count()).select_from(processed_events))).scalar_one()
    assert recorded == 7  # c's opening, then six distinct events (the priority too: it chooses the SLA policy)


async def test_a_batch_of_events_that_move_no_deadline_runs_no_sql(
    store: DeadlineStore, handler: TicketEventHandler
) -> None:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    for engine in {store.writer, store.reader}:
        event.listen(engine.sync_engine, "before_cursor_execute", count)
    await handler(batch(flagged(uuid.uuid4()), flagged(uuid.uuid4())))
    assert statements == []
    await handler(batch(opened(uuid.uuid4())))
    assert statements != []  # the counter does see the consumer's statements


async def test_the_timer_does_not_mark_fired_a_deadline_the_consumer_is_cancelling(store: DeadlineStore) -> None:
    ticket = uuid.uuid4()
    due = Deadline(ticket, "HD-1", 1, None, NOW - timedelta(seconds=1), DeadlineState.PENDING)
    async with store.changes() as changes:
        await changes.save([due], NOW)
    [seen_by_timer] = await store.due(NOW, 10)

    async with store.changes() as changes:
        [locked] = (await changes.deadlines([ticket])).values()
        fired = replace(seen_by_timer, state=DeadlineState.FIRED)
        marking = asyncio.create_task(store.settle([(seen_by_timer, fired)], NOW))
        await asyncio.sleep(0.3)
        assert not marking.done()  # PostgreSQL: the row lock; SQLite: the write lock
        await changes.save([replace(locked, state=DeadlineState.CANCELLED)], NOW)
    assert await marking == set()
    assert await store.pending_count() == 0 and await store.of_ticket(ticket) == []


async def test_a_deadline_the_timer_marked_fired_stays_fired_when_the_ticket_is_routed(
    store: DeadlineStore, handler: TicketEventHandler
) -> None:
    ticket = uuid.uuid4()
    await handler(batch(opened(ticket, at=NOW - AFTER - timedelta(seconds=1))))
    [due] = await store.due(NOW, 10)
    assert await store.settle([(due, replace(due, state=DeadlineState.FIRED))], NOW) == {ticket}
    await handler(batch(routed(ticket, "network")))
    assert await deadline_of(store, ticket) == (1, "network", "fired")
    assert await store.due(NOW + AFTER, 10) == []


async def test_processed_event_ids_older_than_the_retention_are_forgotten_and_younger_ones_kept(
    store: DeadlineStore,
) -> None:
    old, young = [uuid.uuid4() for _ in range(3)], [uuid.uuid4() for _ in range(2)]
    async with store.changes() as changes:
        await changes.mark_processed(old, NOW - timedelta(days=8))
        await changes.mark_processed(young, NOW - timedelta(days=6))
    assert await store.prune_processed(NOW - timedelta(days=7), chunk=2) == 3  # over two chunks
    async with store.changes() as changes:
        assert await changes.seen(old + young) == set(young)
    assert await store.prune_processed(NOW - timedelta(days=7)) == 0


async def test_the_retention_worker_prunes_by_its_clock_and_counts_what_it_forgot(store: DeadlineStore) -> None:
    async with store.changes() as changes:
        await changes.mark_processed([uuid.uuid4()], NOW - timedelta(days=7, seconds=1))
        await changes.mark_processed([uuid.uuid4()], NOW - timedelta(days=1))
    counted = REGISTRY.get_sample_value("helpdesk_escalation_processed_events_pruned_total") or 0.0
    clock = SimpleNamespace(now=lambda: NOW)
    retention = ProcessedEventsRetention(store, clock, retention=timedelta(days=7), interval_s=3600)
    assert await retention.prune() == 1
    assert REGISTRY.get_sample_value("helpdesk_escalation_processed_events_pruned_total") == counted + 1
    async with store.reader.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(processed_events))).scalar_one() == 1
