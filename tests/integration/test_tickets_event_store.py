"""The ticket event store against real SQLite and PostgreSQL (every test runs on both)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from contracts.envelope import new_envelope
from contracts.incidents import (
    Channel,
    CustomerProfile,
    IncidentIdentified,
    IncidentIdentifiedData,
)
from services.tickets.adapters import event_store, read_model, repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.event_store import ConcurrencyConflict
from services.tickets.adapters.repository import Change
from services.tickets.domain import open_ticket


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[TicketDatabase]:
    database = TicketDatabase(database_url)
    await database.create_tables()
    yield database
    await database.close()


def incident(message_id: str) -> IncidentIdentified:
    data = IncidentIdentifiedData(
        channel=Channel.CHAT,
        channel_message_id=message_id,
        received_at=datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
        subject=f"Cannot log in ({message_id})",
        customer=CustomerProfile(identified=False, email="x@example.com"),
    )
    return new_envelope(IncidentIdentified, data, correlation_id=f"corr-{message_id}")  # type: ignore[return-value]


async def open_one(db: TicketDatabase, message_id: str = "m-1") -> uuid.UUID:
    ticket_id = uuid.uuid4()
    async with db.writer.begin() as conn:
        number = (await event_store.allocate_numbers(conn, [ticket_id]))[ticket_id]
        cause = incident(message_id)
        events = repository.recorded(ticket_id, [open_ticket(number, cause.data)], at=datetime.now(UTC), cause=cause)
        await repository.save(conn, [Change.of(None, events)])
    return ticket_id


async def history(db: TicketDatabase, ticket_id: uuid.UUID) -> repository.TicketHistory:
    async with db.reader.connect() as conn:
        return (await repository.load(conn, [ticket_id]))[ticket_id]


def claimed_by(before: repository.TicketHistory, agent: str) -> list:  # type: ignore[type-arg]
    return repository.recorded(
        before.ticket.ticket_id, before.ticket.claim(agent), at=datetime.now(UTC), correlation_id="corr"
    )


async def test_appended_events_load_back_as_the_same_messages_in_version_order(db: TicketDatabase) -> None:
    ticket_id = await open_one(db)
    before = await history(db, ticket_id)
    new = claimed_by(before, "alice")
    async with db.writer.begin() as conn:
        await event_store.append(conn, 1, new)
    after = await history(db, ticket_id)
    assert [e.type for e in after.events] == ["ticket.opened", "ticket.claimed"]
    assert after.events[1] == new[0]  # same id, times, correlation, data
    assert after.events[0].occurred_at.tzinfo is not None
    assert after.ticket.assignee == "alice"


async def test_tickets_loaded_to_decide_on_are_what_their_histories_add_up_to(db: TicketDatabase) -> None:
    claimed, untouched = await open_one(db, "m-1"), await open_one(db, "m-2")
    before = await history(db, claimed)
    async with db.writer.begin() as conn:
        await repository.save(conn, [Change.of(before.ticket, claimed_by(before, "alice"))])
    async with db.reader.connect() as conn:
        histories = await repository.load(conn, [claimed, untouched])
        tickets = await repository.load_tickets(conn, [claimed, untouched, uuid.uuid4()])  # an unknown id is left out
    assert tickets == {t: h.ticket for t, h in histories.items()}
    assert (tickets[claimed].version, tickets[claimed].assignee) == (2, "alice")


async def test_two_writers_at_the_same_expected_version_one_wins_the_other_conflicts(db: TicketDatabase) -> None:
    ticket_id = await open_one(db)
    before = await history(db, ticket_id)
    alice, bob = claimed_by(before, "alice"), claimed_by(before, "bob")
    other_replica = TicketDatabase(db.url)  # a second process's pool, as a second replica would have
    started = asyncio.Event()

    async def write(database: TicketDatabase, events: list, pause: float) -> str:  # type: ignore[type-arg]
        async with database.writer.begin() as conn:
            started.set()
            await asyncio.sleep(pause)  # both have read version 1 and now decide on it
            await event_store.append(conn, before.ticket.version, events)
        return events[0].data.agent_id

    try:
        results = await asyncio.gather(write(db, alice, 0.2), write(other_replica, bob, 0.0), return_exceptions=True)
    finally:
        await other_replica.close()
    winners = [r for r in results if isinstance(r, str)]
    conflicts = [r for r in results if isinstance(r, ConcurrencyConflict)]
    assert len(winners) == 1 and len(conflicts) == 1, results
    after = await history(db, ticket_id)
    assert after.ticket.version == 2 and after.ticket.assignee == winners[0]


async def test_opening_the_same_ticket_twice_is_a_conflict(db: TicketDatabase) -> None:
    ticket_id = await open_one(db)
    stored = await history(db, ticket_id)
    async with db.writer.begin() as conn:
        with pytest.raises(ConcurrencyConflict):
            await event_store.append(conn, 0, [stored.events[0].model_copy(update={"event_id": uuid.uuid4()})])


async def test_ticket_numbers_are_unique_across_replicas_allocating_at_once(db: TicketDatabase) -> None:
    replicas = [db, TicketDatabase(db.url), TicketDatabase(db.url)]

    async def allocate(database: TicketDatabase) -> list[str]:
        numbers: list[str] = []
        for _ in range(5):
            async with database.writer.begin() as conn:
                numbers += (await event_store.allocate_numbers(conn, [uuid.uuid4() for _ in range(40)])).values()
        return numbers

    try:
        allocated = [n for batch in await asyncio.gather(*(allocate(r) for r in replicas)) for n in batch]
    finally:
        for replica in replicas[1:]:
            await replica.close()
    assert len(allocated) == 600
    assert len(set(allocated)) == 600
    assert all(n.startswith("HD-") and n[3:].isdigit() for n in allocated)


async def test_a_ticket_is_found_by_its_number_or_its_id(db: TicketDatabase) -> None:
    ticket_id = await open_one(db)
    number = (await history(db, ticket_id)).ticket.number
    async with db.reader.connect() as conn:
        assert await repository.find(conn, number) == ticket_id
        assert await repository.find(conn, number.lower()) == ticket_id
        assert await repository.find(conn, str(ticket_id)) == ticket_id
        assert await repository.find(conn, "HD-999999") is None
        assert await repository.find(conn, str(uuid.uuid4())) is None
        assert await repository.find(conn, "nonsense") is None


async def test_the_read_model_is_written_with_the_events_and_rebuilt_identically_from_the_log(
    db: TicketDatabase,
) -> None:
    ids = [await open_one(db, f"m-{i}") for i in range(3)]
    before = await history(db, ids[0])
    async with db.writer.begin() as conn:
        await repository.save(conn, [Change.of(before.ticket, claimed_by(before, "alice"))])

    async def rows() -> list[dict]:  # type: ignore[type-arg]
        async with db.reader.connect() as conn:
            result = await conn.execute(select(read_model.tickets).order_by(read_model.tickets.c.number))
            return [dict(r._mapping) for r in result]

    projected = await rows()
    assert [r["status"] for r in projected] == ["in_progress", "open", "open"]
    assert projected[0]["assignee"] == "alice" and projected[0]["version"] == 2
    assert await repository.rebuild_read_model(db) == 3
    assert await rows() == projected


async def test_read_after_returns_the_log_in_position_order_from_a_position(db: TicketDatabase) -> None:
    ids = [await open_one(db, f"m-{i}") for i in range(4)]
    async with db.reader.connect() as conn:
        everything = await event_store.read_after(conn, 0, 100)
        rest = await event_store.read_after(conn, everything[1].position, 100)
        assert await event_store.count_after(conn, everything[1].position) == 2
    assert [e.message.ticket_id for e in everything] == ids
    assert [e.position for e in everything] == sorted(e.position for e in everything)
    assert rest == everything[2:]


async def routed(db: TicketDatabase, ticket_id: uuid.UUID, queue: str, priority: int) -> None:
    before = await history(db, ticket_id)
    events = repository.recorded(
        ticket_id,
        before.ticket.route(
            priority=priority, priority_rule="r", priority_reason="x", queue=queue, queue_rule="r", queue_reason="x"
        ),
        at=datetime.now(UTC),
        correlation_id="corr",
    )
    async with db.writer.begin() as conn:
        await repository.save(conn, [Change.of(before.ticket, events)])


async def counted(db: TicketDatabase) -> list[tuple[str, int | None, str | None, int]]:
    """The population as counting every row says it is (what the census did before there was one)."""
    t = read_model.tickets
    query = select(t.c.status, t.c.priority, t.c.queue, func.count()).group_by(t.c.status, t.c.priority, t.c.queue)
    async with db.reader.connect() as conn:
        return sorted(((s, p, q, n) for s, p, q, n in (await conn.execute(query)).all()), key=_kind_order)


async def population(db: TicketDatabase) -> list[tuple[str, int | None, str | None, int]]:
    async with db.reader.connect() as conn:
        return sorted(await read_model.population(conn), key=_kind_order)


def _kind_order(kind: tuple[str, int | None, str | None, int]) -> tuple[str, int, str]:
    return kind[0], kind[1] or 0, kind[2] or ""


async def test_the_population_follows_every_ticket_written_and_is_rebuilt_with_the_read_model(
    db: TicketDatabase,
) -> None:
    ids = [await open_one(db, f"m-{i}") for i in range(6)]
    await routed(db, ids[0], "network", 2)
    await routed(db, ids[1], "network", 2)
    await routed(db, ids[2], "printers", 4)
    await routed(db, ids[2], "network", 1)  # moves from one kind to another
    before = await history(db, ids[1])
    async with db.writer.begin() as conn:
        await repository.save(conn, [Change.of(before.ticket, claimed_by(before, "alice"))])
    expected = [
        ("in_progress", 2, "network", 1),
        ("open", None, None, 3),
        ("open", 1, "network", 1),
        ("open", 2, "network", 1),
    ]
    assert await counted(db) == expected
    assert await population(db) == expected
    await repository.rebuild_read_model(db)
    assert await population(db) == expected


async def test_queues_say_how_many_wait_and_since_when_the_oldest_waits_whatever_its_priority(
    db: TicketDatabase,
) -> None:
    ids = [await open_one(db, f"m-{i}") for i in range(4)]
    for ticket_id, queue, priority in zip(ids, ["network", "network", "network", "printers"], [3, 1, 5, 2]):
        await routed(db, ticket_id, queue, priority)
    before = await history(db, ids[3])
    async with db.writer.begin() as conn:
        await repository.save(conn, [Change.of(before.ticket, claimed_by(before, "alice"))])
    async with db.reader.connect() as conn:
        opened = {
            r.ticket_id: r.opened_at
            for r in await conn.execute(select(read_model.tickets.c.ticket_id, read_model.tickets.c.opened_at))
        }
        queues = {q["queue"]: q for q in await read_model.queues(conn)}
        oldest = await read_model.oldest_waiting(conn)
    assert queues["network"] == {"queue": "network", "depth": 3, "oldest_opened_at": opened[ids[0]]}
    assert queues["printers"] == {"queue": "printers", "depth": 0, "oldest_opened_at": None}
    assert oldest == {"network": opened[ids[0]]}  # the first opened, though priority 1 waits ahead of it
