"""Two relays on one log: the one that lost its lock stops, and the saved position never moves back.

Each relay is its own replica (its own database pools) publishing to the real
broker; a publisher that notes what it sent tells which relay published what.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from contracts.envelope import new_envelope
from contracts.incidents import Channel, CustomerProfile, IncidentIdentified, IncidentIdentifiedData
from contracts.topics import Topic
from runtime.consumer import Delivery
from runtime.kafka import Encoded, Publisher, make_broker
from runtime.settings import CommonSettings
from services.tickets.adapters import event_store
from services.tickets.adapters.database import TicketDatabase
from services.tickets.handlers import open_tickets, ticket_id_for
from services.tickets.relay import LEADER_LOCK_KEY, RELAY_NAME, LeadershipLost, Relay


class NotingPublisher(Publisher):
    """The real publisher, noting the ticket ids of what it published (which relay sent what)."""

    def __init__(self, publisher: Publisher) -> None:
        super().__init__(publisher._broker, "tickets-test", publisher._prefix)
        self.ticket_ids: list[str] = []

    async def publish_encoded(self, topic: Topic, items: Sequence[Encoded]) -> None:
        await super().publish_encoded(topic, items)
        self.ticket_ids += [item.key for item in items]


@pytest.fixture
async def publisher(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Publisher]:
    common = CommonSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix)
    broker = make_broker("tickets-test", common)
    await broker.start()
    try:
        yield Publisher(broker, "tickets-test", topic_prefix)
    finally:
        await broker.stop()


@asynccontextmanager
async def replica(url: str) -> AsyncIterator[TicketDatabase]:
    db = TicketDatabase(url)
    try:
        yield db
    finally:
        await db.close()


def incident(message_id: str) -> IncidentIdentified:
    data = IncidentIdentifiedData(
        channel=Channel.WEB,
        channel_message_id=message_id,
        received_at=datetime.now(UTC),
        subject="Badge reader offline",
        customer=CustomerProfile(identified=False, email="facilities@example.com"),
    )
    return new_envelope(IncidentIdentified, data)  # type: ignore[return-value]


async def open_tickets_for(db: TicketDatabase, *message_ids: str) -> list[uuid.UUID]:
    incidents = [incident(m) for m in message_ids]
    await open_tickets(db, lambda: None)([Delivery(m, "t", 0, i, None) for i, m in enumerate(incidents)])
    return [ticket_id_for(m.data) for m in incidents]


async def saved_position(db: TicketDatabase) -> int:
    async with db.reader.connect() as conn:
        return await event_store.relay_position(conn, RELAY_NAME)


async def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {timeout}s")


async def test_a_relay_behind_another_never_moves_the_saved_position_back(
    database_url: str, publisher: Publisher
) -> None:
    async with replica(database_url) as db:
        await db.create_tables()
        await open_tickets_for(db, *(f"badge-{i}" for i in range(6)))
        ahead, behind = Relay(db, publisher, batch_size=6), Relay(db, publisher, batch_size=2)

        published, position = await ahead.relay_once(0)
        assert (published, await saved_position(db)) == (6, position)
        # The other still thinks it is at 0 (it lost its lock without knowing yet): it publishes two
        # events again (harmless: same ids) but must neither save 2 nor carry on as if it led.
        with pytest.raises(LeadershipLost):
            await behind.relay_once(0)
        assert await saved_position(db) == position


async def test_on_postgresql_a_relay_whose_lock_session_ended_stops_relaying_until_it_leads_again(
    postgres_database: str, publisher: Publisher
) -> None:
    first_publisher, second_publisher = NotingPublisher(publisher), NotingPublisher(publisher)
    async with replica(postgres_database) as first_db, replica(postgres_database) as second_db:
        await first_db.create_tables()
        first = asyncio.create_task(Relay(first_db, first_publisher, poll_interval_s=0.02).run())
        [before] = await open_tickets_for(first_db, "before")
        await eventually(lambda: _noted(first_publisher, before))
        second = asyncio.create_task(Relay(second_db, second_publisher, poll_interval_s=0.02).run())
        try:
            # The leader's lock session ends under it (a killed backend, a network cut) and the lock
            # goes elsewhere: here to the test's own session, so that for a while neither relay leads.
            async with second_db.writer.connect() as elsewhere:
                await eventually(lambda: _take_lock_from_relays(elsewhere))
                [after] = await open_tickets_for(second_db, "after")
                await asyncio.sleep(0.5)  # room for the relay that lost its lock to publish, if it still relayed
                assert str(after) not in first_publisher.ticket_ids, "the relay that lost its lock went on relaying"
                assert str(after) not in second_publisher.ticket_ids, "the standby relayed without the lock"
                await elsewhere.invalidate()  # the lock is free again: one of the relays takes over
            await eventually(lambda: _noted_once(after, first_publisher, second_publisher))
            await eventually(lambda: _saved_up_to_newest(second_db))
            assert not first.done() and not second.done(), "both keep going: one relays, the other stands by"
        finally:
            first.cancel()
            second.cancel()
            await asyncio.gather(first, second, return_exceptions=True)


async def _take_lock_from_relays(conn: Any) -> bool:
    """End the session of whichever relay holds the lock, then try to take it; True once this session has it."""
    ids = {"hi": LEADER_LOCK_KEY >> 32, "lo": LEADER_LOCK_KEY & 0xFFFF_FFFF}
    await conn.execute(
        text(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = :hi AND objid = :lo AND objsubid = 1 AND pid <> pg_backend_pid()"
        ),
        ids,
    )
    taken = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK_KEY})).scalar()
    await conn.commit()
    return bool(taken)


async def _noted_once(ticket_id: uuid.UUID, *publishers: NotingPublisher) -> bool:
    return sum(p.ticket_ids.count(str(ticket_id)) for p in publishers) == 1


async def _noted(publisher: NotingPublisher, ticket_id: uuid.UUID) -> bool:
    return str(ticket_id) in publisher.ticket_ids


async def _saved_up_to_newest(db: TicketDatabase) -> bool:
    async with db.reader.connect() as conn:
        newest = (await event_store.read_after(conn, 0, 1000))[-1].position
    return await saved_position(db) == newest
