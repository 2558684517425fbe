"""Generated sequences of commands through the real store: what is stored is what the log folds to.

The unit stateful test (tests/unit/test_tickets_aggregate_stateful.py) keeps the
tickets in memory; here every step loads the two tickets from the database,
decides, and saves the events with ``repository.save`` (which writes the
read-model rows from the ticket as decided), on SQLite and on PostgreSQL. At
the end, the tickets loaded back and their read-model rows must be the fold
of their stored logs.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from contracts.envelope import Envelope, new_envelope
from contracts.incidents import IncidentIdentified
from contracts.tickets import MESSAGE_OF_DATA
from services.tickets.adapters import event_store, read_model, repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.repository import Change, TicketHistory
from services.tickets.domain import (
    Actor,
    Status,
    Ticket,
    TicketEvent,
    TicketRuleViolation,
    open_ticket,
)
from tests.support.ticket_service import (
    FINISHED_AT,
    Claim,
    Reopen,
    Resolve,
    Step,
    incident,
    steps,
)

sequences = st.lists(
    st.tuples(
        st.one_of(list(steps().values())),
        st.sampled_from([0, 0, 1]),
    ),
    max_size=12,
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[TicketDatabase]:
    database = TicketDatabase(database_url)
    await database.create_tables()
    yield database
    await database.close()


@settings(
    max_examples=25,
    deadline=None,
    # One database for all examples: each example opens two tickets of its own in it.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=sequences)
async def test_tickets_saved_step_by_step_load_and_read_as_the_fold_of_their_stored_logs(
    db: TicketDatabase, sequence: list[tuple[Step, int]]
) -> None:
    ids = await _open_two(db)
    async with db.reader.connect() as conn:
        decided = {t: [e.data for e in events] for t, events in (await event_store.load_streams(conn, ids)).items()}
    clock = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    for step, which in sequence:
        clock += timedelta(minutes=1)
        for ticket_id, events in (await _decide_and_save(db, ids, step, which, clock)).items():
            decided[ticket_id].extend(events)

    async with db.reader.connect() as conn:
        stored = await event_store.load_streams(conn, ids)
        loaded = await repository.load(conn, ids)
        rows = await _rows(conn, ids)
    for ticket_id in ids:
        assert [e.data for e in stored[ticket_id]] == decided[ticket_id], "every event stored as decided"
        folded = Ticket.from_events(ticket_id, decided[ticket_id])
        assert loaded[ticket_id].ticket == folded
        assert folded.version == len(stored[ticket_id])
        expected = TicketHistory.of(ticket_id, stored[ticket_id]).read_model_row()
        assert {k: rows[ticket_id][k] for k in expected} == expected


# Found by the unit stateful test (fixed since): the row written on reopening said in_progress, the log said open.
async def test_a_reopened_ticket_loads_and_reads_in_progress_with_its_owner(
    db: TicketDatabase,
) -> None:
    ids = await _open_two(db)
    owner = Actor("agent-1")
    clock = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    for step in (
        Claim(owner),
        Resolve(owner, "Replaced the toner"),
        Reopen(owner, "Still smoking", late=False),
    ):
        clock += timedelta(minutes=1)
        await _decide_and_save(db, ids, step, 0, clock)
    async with db.reader.connect() as conn:
        loaded = (await repository.load(conn, ids))[ids[0]].ticket
        row = (await _rows(conn, ids))[ids[0]]
    assert (row["status"], row["assignee"]) == (
        "in_progress",
        "agent-1",
    )  # what the read model says
    assert (loaded.status, loaded.assignee) == (
        Status.IN_PROGRESS,
        "agent-1",
    )  # what the log says


async def _open_two(db: TicketDatabase) -> list[uuid.UUID]:
    ids = [uuid.uuid4(), uuid.uuid4()]
    async with db.writer.begin() as conn:
        numbers = await event_store.allocate_numbers(conn, ids)
        changes = []
        for ticket_id in ids:
            cause = new_envelope(
                IncidentIdentified,
                incident(f"store-{ticket_id}"),
                correlation_id=str(ticket_id),
            )
            opened = open_ticket(numbers[ticket_id], cause.data)  # type: ignore[arg-type]
            changes.append(
                Change.of(
                    None,
                    repository.recorded(ticket_id, [opened], at=FINISHED_AT, cause=cause),
                )
            )
        await repository.save(conn, changes)
    return ids


async def _decide_and_save(
    db: TicketDatabase, ids: list[uuid.UUID], step: Step, which: int, at: datetime
) -> dict[uuid.UUID, list[TicketEvent]]:
    """One request, as the API handles it: load both tickets, decide, save what was decided (or nothing)."""
    async with db.writer.begin() as conn:
        histories = await repository.load(conn, ids)
        ticket, other = histories[ids[which]].ticket, histories[ids[1 - which]].ticket
        try:
            mine, theirs = step.decide(ticket, other)
        except TicketRuleViolation:
            return {}
        decided = {t.ticket_id: events for t, events in ((ticket, mine), (other, theirs)) if events}
        tickets = {ticket.ticket_id: ticket, other.ticket_id: other}
        await repository.save(conn, [Change.of(tickets[t], _recorded(t, events, at)) for t, events in decided.items()])
        return decided


def _recorded(ticket_id: uuid.UUID, events: list[TicketEvent], at: datetime) -> list[Envelope[Any]]:
    # Wrapped as the API wraps an agent's decision (repository.recorded cannot wrap merge and link events yet).
    return [
        new_envelope(
            MESSAGE_OF_DATA[type(e)],
            e,
            ticket_id=ticket_id,
            correlation_id="agent",
            occurred_at=at,
        )
        for e in events
    ]


async def _rows(conn: Any, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    result = await conn.execute(select(read_model.tickets).where(read_model.tickets.c.ticket_id.in_(ids)))
    return {r.ticket_id: dict(r._mapping) for r in result}
