"""Consuming a topic safely: commit after the effect, bounded retries, dead letters.

Every service consumes through :func:`subscribe`. FastStream's default
acknowledges a message before the handler runs (a crash then loses it); here
the offsets of a batch are committed only after the service's handler has
returned, which it does only once its effect is durable. On an unexpected
failure the batch is retried with exponential backoff; after the last attempt
each message of the batch is tried alone, so one poisonous message is put on
the dead-letter topic and the rest of the partition keeps flowing. A message
that is not even a valid contract message is dead-lettered at once: retrying
cannot fix it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber

from contracts.envelope import Envelope
from contracts.registry import InvalidMessage, parse_message
from contracts.topics import DEAD_LETTERS, Topic
from runtime.kafka import Publisher
from runtime.logs import get_logger, log_context
from runtime.metrics import BATCH_SECONDS, DEAD_LETTERS as DEAD_LETTER_COUNT, HANDLER_RETRIES, MESSAGES_CONSUMED

M = TypeVar("M", bound=Envelope[Any])
log = get_logger("runtime.consumer")

# How long one poll waits for records. The wait ends as soon as a record arrives,
# so this bounds idle wake-ups, not latency (see _get_batch_without_idle_sleep).
POLL_WAIT_MS = 500

# The broker answers a fetch once it holds FETCH_MIN_BYTES for us or FETCH_LINGER_MS passed.
# aiokafka's defaults (1 byte, 500 ms) answer on the first record: at a steady trickle every
# consumer of the suite then went round fetch -> batch -> handler -> commit for one or two
# records at a time, and the per-round costs (all Python, on 2 shared cores) queued every hop.
# Lingering 20 ms gathers the trickle (bench/e2e at 100/s, with runtime.database's one SQLite
# writer connection: p99 about halved); under load the fetch fills 64 KiB and returns at once.
FETCH_MIN_BYTES = 64 * 1024
FETCH_LINGER_MS = 20


async def _get_batch_without_idle_sleep(self: Any, consumer: Any) -> tuple[ConsumerRecord, ...]:
    """FastStream 0.7's batch poll, minus the sleep it adds after an empty poll.

    Its ``get_msg`` waits up to ``batch_timeout_ms`` for records and, when none
    came, sleeps that long again; a record arriving during the sleep waits
    for it. That blind sleep cost every hop of the pipeline up to a full
    poll interval of latency. ``getmany`` already waits event-driven, so
    returning the empty batch and polling again is all that is needed.
    """
    messages = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
    return tuple(chain.from_iterable(messages.values()))


BatchSubscriber.get_msg = _get_batch_without_idle_sleep  # type: ignore[method-assign]


async def _keep_raw_bytes(msg: Any) -> None:
    """We decode records ourselves (with the contract models); skip FastStream's JSON pass."""
    return None


@dataclass(frozen=True)
class Delivery(Generic[M]):
    """One decoded message and where it came from."""

    message: M
    topic: str
    partition: int
    offset: int
    key: bytes | None


Handler = Callable[[Sequence[Delivery[Any]]], Awaitable[None]]


class PoisonMessage(Exception):
    """A handler's way to say: this message can never succeed; dead-letter it now."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    first_backoff_s: float = 0.2
    max_backoff_s: float = 10.0

    def backoff(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.first_backoff_s * (2 ** (attempt - 1)))


@dataclass
class Subscription:
    topic: Topic
    group: str
    handler: Handler
    accepts: tuple[type[Envelope[Any]], ...]
    max_records: int = 500
    policy: RetryPolicy = field(default_factory=RetryPolicy)


class DeadLetters:
    """Puts a message that cannot be processed on the dead-letter topic, with why and whence."""

    def __init__(self, publisher: Publisher, service: str) -> None:
        self._publisher = publisher
        self._service = service

    async def send(self, record: ConsumerRecord, *, group: str, reason: str, kind: str, attempts: int) -> None:
        headers = {k: (v.decode(errors="replace") if isinstance(v, bytes) else str(v)) for k, v in record.headers}
        headers.update(
            {
                "dlt.reason": reason[:2000],
                "dlt.kind": kind,
                "dlt.origin.topic": record.topic,
                "dlt.origin.partition": str(record.partition),
                "dlt.origin.offset": str(record.offset),
                "dlt.consumer.group": group,
                "dlt.service": self._service,
                "dlt.attempts": str(attempts),
                "dlt.failed_at": datetime.now(UTC).isoformat(),
            }
        )
        await self._publisher.publish_raw(DEAD_LETTERS, record.value or b"", record.key, headers)
        DEAD_LETTER_COUNT.labels(self._service, record.topic, group, kind).inc()
        log.warning(
            "message dead-lettered",
            reason=reason,
            kind=kind,
            origin_topic=record.topic,
            origin_partition=record.partition,
            origin_offset=record.offset,
            group=group,
        )


def subscribe(broker: KafkaBroker, publisher: Publisher, service: str, sub: Subscription) -> None:
    """Register ``sub`` on ``broker`` with the suite's delivery guarantees."""
    topic_name = publisher.topic_name(sub.topic)
    dead_letters = DeadLetters(publisher, service)
    labels = (service, sub.topic.name, sub.group)

    async def decode(records: Sequence[ConsumerRecord]) -> list[Delivery[Any]]:
        good: list[Delivery[Any]] = []
        for record in records:
            try:
                message = parse_message(record.value or b"", sub.accepts)
            except InvalidMessage as exc:
                await dead_letters.send(record, group=sub.group, reason=str(exc), kind="invalid", attempts=1)
                MESSAGES_CONSUMED.labels(*labels, "deadlettered").inc()
                continue
            good.append(Delivery(message, record.topic, record.partition, record.offset, record.key))
        return good

    async def attempt(batch: Sequence[Delivery[Any]], max_attempts: int) -> tuple[bool, str, int]:
        """Run the handler with bounded retries; (succeeded, last error, attempts)."""
        error = ""
        for n in range(1, max_attempts + 1):
            try:
                await sub.handler(batch)
                return True, "", n
            except PoisonMessage as exc:
                return False, f"rejected by handler: {exc}", n
            except Exception as exc:  # noqa: BLE001 - any failure is retried, then dead-lettered
                error = f"{type(exc).__name__}: {exc}"
                if n < max_attempts:
                    HANDLER_RETRIES.labels(*labels).inc()
                    log.warning("handler failed, retrying", error=error, attempt=n, batch=len(batch))
                    await asyncio.sleep(sub.policy.backoff(n))
        return False, error, max_attempts

    @broker.subscriber(
        topic_name,
        group_id=sub.group,
        batch=True,
        max_records=sub.max_records,
        batch_timeout_ms=POLL_WAIT_MS,
        fetch_min_bytes=FETCH_MIN_BYTES,
        fetch_max_wait_ms=FETCH_LINGER_MS,
        decoder=_keep_raw_bytes,
        auto_offset_reset="earliest",
        # On an exception that escapes (the dead-letter topic itself unreachable),
        # seek back so the batch is delivered again: never commit what was not done.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=f"{sub.group}:{sub.topic.name}",
        description=f"{service} consumes {sub.topic.name} as group {sub.group}",
    )
    async def on_batch(msg: KafkaMessage) -> None:
        records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
        started = time.perf_counter()
        batch = await decode(records)
        if len(batch) == 1:
            await _one(batch[0], records)
        elif batch:
            ok, _, _ = await attempt(batch, 1)
            if ok:
                MESSAGES_CONSUMED.labels(*labels, "processed").inc(len(batch))
            else:
                # Find the poisonous message(s): every message alone, each with its own bounded retries.
                log.warning("batch failed, processing its messages one by one", batch=len(batch))
                for delivery in batch:
                    await _one(delivery, records)
        BATCH_SECONDS.labels(*labels).observe(time.perf_counter() - started)

    async def _one(delivery: Delivery[Any], records: Sequence[ConsumerRecord]) -> None:
        with log_context(correlation_id=delivery.message.correlation_id, event_id=str(delivery.message.event_id)):
            ok, error, attempts = await attempt([delivery], sub.policy.max_attempts)
            if ok:
                MESSAGES_CONSUMED.labels(*labels, "processed").inc()
            else:
                await _dead_letter(delivery, records, error, attempts)

    async def _dead_letter(delivery: Delivery[Any], records: Sequence[ConsumerRecord], error: str, attempts: int) -> None:
        record = next(r for r in records if r.partition == delivery.partition and r.offset == delivery.offset)
        await dead_letters.send(record, group=sub.group, reason=error, kind="failed", attempts=attempts)
        MESSAGES_CONSUMED.labels(*labels, "deadlettered").inc()
