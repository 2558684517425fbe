"""Reading and writing the real broker from tests."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.envelope import new_envelope
from contracts.incidents import IncidentReported, IncidentReportedData
from contracts.topics import Topic
from devtools.lag import group_lag  # noqa: F401 - part of this module's helpers


def incident(subject: str = "Printer on fire", *, message_id: str | None = None, **contact: str) -> IncidentReported:
    data = IncidentReportedData(
        channel="integration",
        channel_message_id=message_id or uuid.uuid4().hex,
        received_at=datetime.now(UTC),
        subject=subject,
        description=f"{subject}: details",
        contact=contact or {},
    )
    return new_envelope(IncidentReported, data)  # type: ignore[return-value]


async def produce(bootstrap: str, topic: str, value: bytes, key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str, *, at_least: int = 1, timeout: float = 20.0) -> list[ConsumerRecord]:
    """Every record on ``topic`` from the start, waiting until ``at_least`` have arrived."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for items in batch.values():
                records.extend(items)
            if len(records) >= at_least:
                # A short grace period to catch anything that was about to arrive.
                for items in (await consumer.getmany(timeout_ms=300)).values():
                    records.extend(items)
                break
    finally:
        await consumer.stop()
    return records


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic whose name starts with ``prefix`` (a test's own topics)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1, what: str | None = None):  # type: ignore[no-untyped-def]
    """Poll an async or sync predicate until it returns something truthy; TimeoutError naming what it waited for.

    Each poll is bounded too (by what is left of ``timeout``), so a predicate stuck on the broker
    cannot hold the wait past its deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            try:
                result = await asyncio.wait_for(result, max(deadline - time.monotonic(), interval))
            except TimeoutError:
                result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what or _described(predicate)}")
        await asyncio.sleep(interval)


def _described(predicate) -> str:  # type: ignore[no-untyped-def]
    """What a predicate checks: a lambda's source line says it; a function's name does."""
    name = getattr(predicate, "__qualname__", repr(predicate))
    if getattr(predicate, "__name__", "") != "<lambda>":
        return name
    try:
        return " ".join(inspect.getsource(predicate).split())[:300]
    except (OSError, TypeError):
        return name
