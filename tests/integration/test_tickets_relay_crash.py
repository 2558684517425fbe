"""The ticket service as a real process, SIGKILLed while its relay is mid-stream, and started again.

Nothing stored may be lost on the way to Kafka (every event in the log reaches
the events topic, some perhaps twice), and no event on the topic may take
effect twice downstream: routing, reading the topic with its duplicates, gets
each ticket routed exactly once.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.envelope import Envelope, new_envelope
from contracts.incidents import (
    Channel,
    CustomerProfile,
    IncidentIdentified,
    IncidentIdentifiedData,
)
from contracts.registry import parse_message
from contracts.topics import (
    INCIDENTS_IDENTIFIED,
    ROUTING_COMMANDS,
    TICKET_EVENTS_TOPIC,
)
from runtime.settings import CommonSettings
from services.routing import bootstrap as routing
from services.routing.config import Settings as RoutingSettings
from services.tickets.adapters import event_store
from services.tickets.adapters.database import TicketDatabase
from services.tickets.bootstrap import ROUTING_COMMANDS_GROUP
from services.tickets.relay import message_headers, message_value
from tests.support.kafka import wait_for
from tests.support.ticket_service import TicketProcess

INCIDENTS = 200
REPUBLISHED = 100  # stored events put on the topic once more, as a relay crashing at a worse moment would


def incident(n: int) -> IncidentIdentified:
    data = IncidentIdentifiedData(
        channel=Channel.WEB,
        channel_message_id=f"crash-{n}",
        received_at=datetime.now(UTC),
        subject=f"Payroll export fails ({n})",
        customer=CustomerProfile(identified=False, email="payroll@example.com"),
    )
    return new_envelope(IncidentIdentified, data, correlation_id=f"contact-{n}")  # type: ignore[return-value]


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def broker(kafka_bootstrap: str) -> AsyncIterator[Broker]:
    broker = Broker(kafka_bootstrap)
    await broker.consumer.start()
    await broker.admin.start()
    yield broker
    await broker.consumer.stop()
    await broker.admin.close()


class Broker:
    """The topics as any downstream service sees them: their size, their messages, a group's lag."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)

    async def records(self, topic: str) -> int:
        ends = await self.consumer.end_offsets(await self.partitions(topic))
        return sum(ends.values())

    async def messages(self, topic: str, timeout: float = 60.0) -> list[Envelope[Any]]:
        """Every message on ``topic`` now, from the start (in no particular order across partitions)."""
        partitions = await self.partitions(topic)
        ends = await self.consumer.end_offsets(partitions)
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)
        messages: list[Envelope[Any]] = []
        deadline = time.monotonic() + timeout
        while behind := [tp for tp in partitions if await self.consumer.position(tp) < ends[tp]]:
            # Bounded: a fetch that never returns the records up to the end must fail the test, not hang it.
            assert time.monotonic() < deadline, f"read {len(messages)} messages of {topic} in {timeout:g} s; " + ", ".join(
                f"partition {tp.partition} at {await self.consumer.position(tp)} of {ends[tp]}" for tp in behind
            )
            for tp, records in (await self.consumer.getmany(*partitions, timeout_ms=500)).items():
                messages.extend(parse_message(r.value) for r in records if r.offset < ends[tp])
        return messages

    async def lag(self, group: str, topic: str) -> int:
        """Records of ``topic`` the consumer group has not committed yet."""
        partitions = await self.partitions(topic)
        ends = await self.consumer.end_offsets(partitions)
        committed = await self.admin.list_consumer_group_offsets(group, partitions=partitions)
        return sum(ends[tp] - max(committed[tp].offset, 0) if tp in committed else ends[tp] for tp in partitions)

    async def partitions(self, topic: str) -> list[TopicPartition]:
        # Asked of the admin client: a consumer knows a topic's partitions only once it reads from it.
        (described,) = await self.admin.describe_topics([topic])
        return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def stored_events(database_url: str) -> list[event_store.StoredEvent]:
    db = TicketDatabase(database_url)
    try:
        async with db.reader.connect() as conn:
            return await event_store.read_after(conn, 0, 1_000_000)
    finally:
        await db.close()


async def republish(database_url: str, producer: AIOKafkaProducer, topic: str, count: int) -> None:
    """Put the first ``count`` stored events on the topic again, exactly as the relay puts them there."""
    db = TicketDatabase(database_url)
    try:
        async with db.reader.connect() as conn:
            rows = await event_store.read_rows_after(conn, 0, count)
    finally:
        await db.close()
    for row in rows:
        headers = [(name, value.encode()) for name, value in message_headers(row).items()]
        await producer.send(topic, message_value(row), key=str(row.ticket_id).encode(), headers=headers)
    await producer.flush()


async def test_a_relay_killed_mid_stream_loses_no_event_and_no_duplicate_takes_effect_twice(
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
    producer: AIOKafkaProducer,
    broker: Broker,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}"
    events_topic = TICKET_EVENTS_TOPIC.qualified(topic_prefix)
    for n in range(INCIDENTS):
        message = incident(n)
        key = message.data.partition_key.encode()
        await producer.send(
            INCIDENTS_IDENTIFIED.qualified(topic_prefix),
            message.model_dump_json().encode(),
            key=key,
        )
    await producer.flush()

    # One event per round trip to Kafka: the relay is slow enough to be caught half way.
    tickets = TicketProcess(
        kafka_bootstrap,
        topic_prefix,
        database_url,
        tmp_path / "tickets.out",
        env={"TICKETS_RELAY_BATCH_SIZE": "1"},
    )
    tickets.start()
    try:
        await wait_for(
            lambda: _some_relayed(tickets, broker, events_topic),
            timeout=90,
            interval=0.02,
        )
    finally:
        tickets.kill()
    relayed_before_the_crash = await broker.records(events_topic)
    stored_at_the_crash = await stored_events(database_url)
    assert 0 < relayed_before_the_crash < len(stored_at_the_crash), "the relay should have been killed mid-stream"

    tickets.env = {}
    tickets.start()
    try:
        await wait_for(tickets.ready, timeout=60)
        await republish(database_url, producer, events_topic, REPUBLISHED)
        common = CommonSettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            kafka_topic_prefix=topic_prefix,
            kafka_retry_backoff_ms=10,
        )
        routing_db = f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}"
        router = routing.build(common, RoutingSettings(database_url=routing_db, agents_file=None))
        async with router._lifespan(router.app):
            await wait_for(
                lambda: _settled(database_url, broker, topic_prefix),
                timeout=120,
                interval=0.5,
            )
        assert tickets.stop() == 0, tickets.tail()
    finally:
        tickets.kill()

    log = await stored_events(database_url)
    on_topic = Counter(m.event_id for m in await broker.messages(events_topic))
    assert {e.message.event_id for e in log} <= set(on_topic), "every stored event reached the topic"
    assert on_topic.total() >= len(log) + REPUBLISHED, "the topic carries duplicates"
    ticket_ids = {e.message.ticket_id for e in log}
    assert len(ticket_ids) == INCIDENTS
    recorded = Counter((e.message.ticket_id, e.message.type) for e in log)
    for kind in ("ticket.opened", "ticket.prioritised", "ticket.routed"):
        assert {recorded[(t, kind)] for t in ticket_ids} == {1}, f"each ticket has exactly one {kind}"


async def _some_relayed(tickets: TicketProcess, broker: Broker, topic: str) -> bool:
    assert tickets.process is not None and tickets.process.poll() is None, tickets.tail()
    return await broker.records(topic) >= 20


async def _settled(database_url: str, broker: Broker, prefix: str) -> bool:
    """Every ticket routed, and nothing in flight: routing, the ticket commands and the relay all caught up."""
    log = await stored_events(database_url)
    if len({e.message.ticket_id for e in log if e.message.type == "ticket.routed"}) < INCIDENTS:
        return False
    events, commands = (
        TICKET_EVENTS_TOPIC.qualified(prefix),
        ROUTING_COMMANDS.qualified(prefix),
    )
    if await broker.lag(prefix + "helpdesk-routing", events) or await broker.lag(
        prefix + ROUTING_COMMANDS_GROUP, commands
    ):
        return False
    return {e.message.event_id for e in log} <= {m.event_id for m in await broker.messages(events)}
