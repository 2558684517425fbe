"""The ticket service in-process against a real broker: topics in, the relay out.

The events topic is read back with a plain aiokafka consumer, as any other
service would read it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text

from contracts.commands import EscalateTicket, EscalateTicketData, RouteTicket, RouteTicketData
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import Channel, CustomerProfile, IncidentIdentified, IncidentIdentifiedData
from contracts.registry import parse_message
from contracts.topics import INCIDENTS_IDENTIFIED, ROUTING_COMMANDS, TICKET_EVENTS_TOPIC
from runtime.consumer import Delivery
from runtime.kafka import headers_for
from runtime.settings import CommonSettings
from services.tickets.adapters import event_store, repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.repository import Change, TicketHistory
from services.tickets.bootstrap import build
from services.tickets.config import Settings
from services.tickets.domain import open_ticket
from services.tickets.handlers import apply_commands, open_tickets, ticket_id_for
from services.tickets.relay import RELAY_NAME, message_headers, message_value


@pytest.fixture
def common(kafka_bootstrap: str, topic_prefix: str) -> CommonSettings:
    return CommonSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[TicketDatabase]:
    database = TicketDatabase(database_url)
    await database.create_tables()
    yield database
    await database.close()


def incident(message_id: str) -> IncidentIdentified:
    data = IncidentIdentifiedData(
        channel=Channel.WEB,
        channel_message_id=message_id,
        received_at=datetime.now(UTC),
        subject="Payroll export fails",
        customer=CustomerProfile(identified=False, email="payroll@example.com"),
    )
    return new_envelope(IncidentIdentified, data, correlation_id=f"contact-{message_id}")  # type: ignore[return-value]


def route(ticket_id: uuid.UUID, queue: str = "finance-apps") -> Envelope[Any]:
    data = RouteTicketData(
        priority=2, priority_rule="r", priority_reason="x", queue=queue, queue_rule="r", queue_reason="x"
    )
    return new_envelope(RouteTicket, data, ticket_id=ticket_id, correlation_id="c")


def batch(messages: list[Envelope[Any]]) -> list[Delivery[Any]]:
    return [Delivery(m, "t", 0, i, None) for i, m in enumerate(messages)]


async def stored_events(db: TicketDatabase) -> list[event_store.StoredEvent]:
    async with db.reader.connect() as conn:
        return await event_store.read_after(conn, 0, 100_000)


async def relayed_up_to(db: TicketDatabase) -> int:
    async with db.reader.connect() as conn:
        return await event_store.relay_position(conn, RELAY_NAME)


async def eventually(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.002) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(every)
    raise AssertionError(f"not within {timeout}s")


async def read_events_topic(
    common: CommonSettings, until: Callable[[list[tuple[str, Envelope[Any], int]]], bool], timeout: float = 30.0
) -> list[tuple[str, Envelope[Any], int]]:
    """(key, message, partition) of every record on the events topic, read from the start until ``until`` holds."""
    consumer = AIOKafkaConsumer(
        TICKET_EVENTS_TOPIC.qualified(common.kafka_topic_prefix),
        bootstrap_servers=common.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[tuple[str, Envelope[Any], int]] = []
    try:
        deadline = time.monotonic() + timeout
        while not until(records):
            assert time.monotonic() < deadline, f"events topic incomplete after {timeout}s ({len(records)} records)"
            for part in (await consumer.getmany(timeout_ms=200)).values():
                for record in part:
                    message = parse_message(record.value)
                    headers = {name: value.decode() for name, value in record.headers}
                    assert headers_for(message).items() <= headers.items(), "the headers any publisher would set"
                    records.append((record.key.decode(), message, record.partition))
    finally:
        await consumer.stop()
    return records


def has_all(event_ids: set[uuid.UUID]) -> Callable[[list[tuple[str, Envelope[Any], int]]], bool]:
    return lambda records: event_ids <= {m.event_id for _, m, _ in records}


async def test_each_stored_event_is_relayed_as_exactly_the_message_that_was_appended(db: TicketDatabase) -> None:
    """The relay puts messages together from the stored columns; they must be what the models would write."""
    tricky = 'Ünïcode ✓ "quoted" back\\slash\nnew line\u2028\x01 😀'
    cause = incident(f"m-{tricky}")
    ticket_id = ticket_id_for(cause.data)
    async with db.writer.begin() as conn:
        number = (await event_store.allocate_numbers(conn, [ticket_id]))[ticket_id]
    on_the_hour = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)  # no fraction of a second: written without one
    history = TicketHistory.of(
        ticket_id, repository.recorded(ticket_id, [open_ticket(number, cause.data)], at=on_the_hour, cause=cause)
    )
    routed = route(ticket_id, queue=tricky)
    escalated = new_envelope(
        EscalateTicket,
        EscalateTicketData(level=2, queue="level-2", reason=tricky, deadline=datetime.now(UTC)),
        ticket_id=ticket_id,
        correlation_id=f"contact-{tricky}",
    )
    for decide, cause_or_agent in [
        (lambda t: t.route(**_route_args(routed)), {"cause": routed}),
        (lambda t: t.escalate(level=2, queue="level-2", reason=tricky), {"cause": escalated}),
        (lambda t: t.claim("agent-ß"), {"correlation_id": history.correlation_id}),  # an agent: no causation id
        (lambda t: t.resolve("agent-ß", tricky), {"correlation_id": history.correlation_id}),
    ]:
        new = repository.recorded(ticket_id, decide(history.ticket), at=datetime.now(UTC), **cause_or_agent)
        history = history.extended(new)
    async with db.writer.begin() as conn:
        await repository.save(conn, [Change.of(None, history.events)])
    async with db.reader.connect() as conn:
        rows = await event_store.read_rows_after(conn, 0, 100)
        loaded = [e.message for e in await event_store.read_after(conn, 0, 100)]

    appended = list(history.events)
    assert [m.type for m in appended] == [
        "ticket.opened",
        "ticket.prioritised",
        "ticket.routed",
        "ticket.escalated",
        "ticket.claimed",
        "ticket.resolved",
    ]
    assert [message_value(row) for row in rows] == [m.model_dump_json().encode() for m in appended]
    assert [parse_message(message_value(row)) for row in rows] == appended
    assert [message_headers(row) for row in rows] == [headers_for(m) for m in appended]
    assert loaded == appended


def _route_args(command: Envelope[Any]) -> dict[str, Any]:
    d = command.data
    return {
        "priority": d.priority,
        "priority_rule": d.priority_rule,
        "priority_reason": d.priority_reason,
        "queue": d.queue,
        "queue_rule": d.queue_rule,
        "queue_reason": d.queue_reason,
    }


async def test_the_relay_publishes_every_event_in_log_order_and_resumes_after_a_restart(
    db: TicketDatabase, common: CommonSettings
) -> None:
    incidents = [incident(f"m-{i}") for i in range(300)]
    await open_tickets(db, lambda: None)(batch(incidents))
    await apply_commands(db, lambda: None)(batch([route(ticket_id_for(m.data)) for m in incidents]))
    log = await stored_events(db)
    assert len(log) == 900
    settings = Settings(database_url=db.url, relay_batch_size=10)

    first = build(common, settings)
    async with first._lifespan(first.app):
        await eventually(lambda: relayed_up_to(db))  # it has published something
    stopped_at = await relayed_up_to(db)
    assert 0 < stopped_at < log[-1].position, "the first relay should have been stopped mid-stream"

    second = build(common, settings)
    async with second._lifespan(second.app):
        await eventually(lambda: _relayed_all(db, log[-1].position))

    records = await read_events_topic(common, has_all({e.message.event_id for e in log}))
    position_of = {e.message.event_id: e.position for e in log}
    assert {m.event_id for _, m, _ in records} == set(position_of)  # every event, under the id it was stored with
    assert all(key == str(m.ticket_id) for key, m, _ in records)
    # Republished duplicates are allowed; the first time each event appears, each partition is in log order.
    first_seen: dict[int, list[int]] = defaultdict(list)
    seen: set[uuid.UUID] = set()
    for _, message, partition in records:
        if message.event_id not in seen:
            seen.add(message.event_id)
            first_seen[partition].append(position_of[message.event_id])
    assert all(positions == sorted(positions) for positions in first_seen.values())
    stored_by_id = {e.message.event_id: e.message for e in log}
    assert all(m == stored_by_id[m.event_id] for _, m, _ in records)  # the very message that was stored


async def _relayed_all(db: TicketDatabase, head: int) -> bool:
    return await relayed_up_to(db) == head


async def test_incidents_and_commands_from_kafka_become_relayed_ticket_events_once(
    db: TicketDatabase, common: CommonSettings
) -> None:
    service = build(common, Settings(database_url=db.url))
    message = incident("chat-77")
    ticket_id = ticket_id_for(message.data)
    command = route(ticket_id)
    async with service._lifespan(service.app):
        for _ in range(2):  # a channel that delivered twice
            await service.publisher.publish(INCIDENTS_IDENTIFIED, message, key=message.data.partition_key)
        await eventually(lambda: _stored_types(db, ["ticket.opened"]))
        for _ in range(2):  # a sender that resent after a crash
            await service.publisher.publish(ROUTING_COMMANDS, command, key=str(ticket_id))
        await eventually(lambda: _stored_types(db, ["ticket.opened", "ticket.prioritised", "ticket.routed"]))
        log = await stored_events(db)
        records = await read_events_topic(common, has_all({e.message.event_id for e in log}))
        await asyncio.sleep(0.3)  # room for a wrongly doubled event to be stored too
        assert len(await stored_events(db)) == 3
    assert {m.type for _, m, _ in records} == {"ticket.opened", "ticket.prioritised", "ticket.routed"}
    assert {m.ticket_id for _, m, _ in records} == {ticket_id}
    opened = next(m for _, m, _ in records if m.type == "ticket.opened")
    assert opened.causation_id == str(message.event_id) and opened.correlation_id == "contact-chat-77"


async def _stored_types(db: TicketDatabase, types: list[str]) -> bool:
    return [e.message.type for e in await stored_events(db)] == types


async def test_on_postgresql_the_relay_does_not_skip_an_event_that_commits_late(
    postgres_database: str, common: CommonSettings
) -> None:
    service = build(common, Settings(database_url=postgres_database))
    async with service._lifespan(service.app):
        writer = TicketDatabase(postgres_database)  # another replica appending
        try:
            async with writer.writer.connect() as held:
                transaction = await held.begin()
                held_id = await _open(held, "held")  # appended, not yet committed
                later = asyncio.create_task(_open_committed(writer, "later"))
                await asyncio.sleep(0.5)  # the relay polls meanwhile
                assert not later.done(), "a second appender must wait for the first to commit"
                await transaction.commit()
            later_id = await later
            log = await stored_events(writer)
        finally:
            await writer.close()
        records = await read_events_topic(common, has_all({e.message.event_id for e in log}))
    assert [e.message.ticket_id for e in log] == [held_id, later_id]  # positions in commit order
    # The relay polled all along; had it seen the later commit first it would have moved past the held event.
    assert {m.ticket_id for _, m, _ in records} == {held_id, later_id}


async def _open(conn: Any, message_id: str) -> uuid.UUID:
    cause = incident(message_id)
    ticket_id = ticket_id_for(cause.data)
    number = (await event_store.allocate_numbers(conn, [ticket_id]))[ticket_id]
    events = repository.recorded(ticket_id, [open_ticket(number, cause.data)], at=datetime.now(UTC), cause=cause)
    await repository.save(conn, [Change.of(None, events)])
    return ticket_id


async def _open_committed(db: TicketDatabase, message_id: str) -> uuid.UUID:
    async with db.writer.begin() as conn:
        return await _open(conn, message_id)



async def test_on_postgresql_one_replica_relays_and_a_standby_takes_over_when_it_stops(
    postgres_database: str, common: CommonSettings
) -> None:
    settings = Settings(database_url=postgres_database)
    leader, standby = build(common, settings), build(common, settings)
    writer = TicketDatabase(postgres_database)
    async with AsyncExitStack() as standby_running, AsyncExitStack() as leader_running:
        await leader_running.enter_async_context(leader._lifespan(leader.app))
        await eventually(lambda: _relay_lock_held(writer))
        await standby_running.enter_async_context(standby._lifespan(standby.app))
        first = await _open_committed(writer, "first")
        await read_events_topic(common, lambda records: len(records) >= 1)
        await asyncio.sleep(0.5)  # room for the standby to publish it a second time, if it wrongly relayed too
        records = await read_events_topic(common, lambda records: len(records) >= 1)
        assert [m.ticket_id for _, m, _ in records] == [first], "only the replica holding the relay lock publishes"

        await leader_running.aclose()
        second = await _open_committed(writer, "second")
        records = await read_events_topic(common, lambda records: second in {m.ticket_id for _, m, _ in records})
        assert {m.ticket_id for _, m, _ in records} == {first, second}  # the standby took over
    await writer.close()


async def _relay_lock_held(db: TicketDatabase) -> bool:
    async with db.reader.connect() as conn:
        held = await conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
        return held.scalar_one() == 1
