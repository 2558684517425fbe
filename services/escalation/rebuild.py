"""Rebuild the SLA clocks from the ticket events topic: ``python -m services.escalation.rebuild``.

After an upgrade (the clocks' tables are new and empty) or to repair them.
Run it with the service stopped (scaled to 0); it refuses while the service's
consumer group has members. It

1. empties ``escalation_sla_clocks`` and ``escalation_processed_events`` (the
   outbox, messages a crashed pass decided, is kept: the service sends it);
2. reads ``helpdesk.tickets.events.v1`` from the oldest event retained up to
   the end offsets taken when it starts, and applies every event with the
   service's own consumer (``handlers.py``), publishing nothing;
3. records every warning and breach due by ``--handled-before`` (default:
   now) as handled, sending nothing. Replayed history ends in states the
   help desk dealt with long ago (the version before sent those warnings and
   escalations); sent now, they would page levels about old tickets and take
   them one level higher than the breach did;
4. commits the service's consumer group at those end offsets, so the service
   goes on with the events that came after.

No timer runs meanwhile: nothing is sent about the intermediate states the
replay passes through. A progress line is logged every few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from contracts.registry import InvalidMessage, parse_message
from contracts.tickets import TICKET_EVENTS
from contracts.topics import TICKET_EVENTS_TOPIC
from runtime.consumer import Delivery
from runtime.kafka import client_security_options
from runtime.logs import configure_logging, get_logger
from runtime.settings import CommonSettings, ConfigError, load
from services.escalation.adapters.store import DeadlineStore
from services.escalation.bootstrap import escalation_policy
from services.escalation.clock import Clock, SystemClock
from services.escalation.config import Settings
from services.escalation.domain.breaches import on_time
from services.escalation.domain.policy import EscalationPolicy
from services.escalation.handlers import TicketEventHandler

log = get_logger("services.escalation.rebuild")

GROUP = "helpdesk-escalation"  # the service's consumer group (before the topic prefix)
LOG_EVERY_S = 5.0


class ServiceRunning(RuntimeError):
    """The service's consumer group has members: the rebuild would race it."""


@dataclass
class Rebuilt:
    events: int = 0
    skipped: int = 0  # not a ticket event this version knows, or without a ticket id
    handled: int = 0  # clocks whose due warnings and breaches were recorded as handled


async def rebuild(
    common: CommonSettings,
    store: DeadlineStore,
    policy: EscalationPolicy,
    clock: Clock,
    handled_before: datetime | None = None,
) -> Rebuilt:
    group, topic = common.kafka_topic_prefix + GROUP, TICKET_EVENTS_TOPIC.qualified(common.kafka_topic_prefix)
    partitions = await _partitions_unless_running(common, group, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=common.kafka_bootstrap_servers.split(","),
        group_id=group,
        enable_auto_commit=False,
        **client_security_options(common),
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        await store.clear()
        result = await _replay(consumer, TicketEventHandler(store, policy, clock), end)
        result.handled = await record_due_as_handled(store, policy, handled_before or clock.now())
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in end.items()})
    finally:
        await consumer.stop()
    log.info("clocks rebuilt", events=result.events, skipped=result.skipped, handled=result.handled)
    return result


async def _partitions_unless_running(common: CommonSettings, group: str, topic: str) -> list[TopicPartition]:
    """The topic's partitions; ServiceRunning if the service's consumer group has members."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=common.kafka_bootstrap_servers.split(","), **client_security_options(common)
    )
    await admin.start()
    try:
        [described] = await admin.describe_consumer_groups([group])
        state = described.groups[0][2]  # (error, group, state, protocol type, protocol, members...)
        [metadata] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if state not in ("Empty", "Dead", ""):
        raise ServiceRunning(f"consumer group {group} is {state}: scale escalation to 0 first")
    return [TopicPartition(topic, p["partition"]) for p in sorted(metadata["partitions"], key=lambda p: p["partition"])]


async def _replay(consumer: AIOKafkaConsumer, handler: TicketEventHandler, end: dict[TopicPartition, int]) -> Rebuilt:
    result, last_log, total = Rebuilt(), time.monotonic(), sum(end.values())
    while [tp for tp, offset in end.items() if await consumer.position(tp) < offset]:
        batches = await consumer.getmany(timeout_ms=500, max_records=500)
        deliveries = []
        for tp, records in batches.items():
            for record in records:
                if record.offset >= end[tp]:
                    continue  # after the rebuild began: the service applies it
                delivery = _delivery(tp, record)
                result.events += 1
                if delivery is None:
                    result.skipped += 1
                else:
                    deliveries.append(delivery)
        if deliveries:
            await handler(deliveries)
        if time.monotonic() - last_log >= LOG_EVERY_S:
            last_log = time.monotonic()
            log.info("replaying ticket events", events=result.events, events_total_at_most=total)
    return result


def _delivery(tp: TopicPartition, record: Any) -> Delivery[Any] | None:
    try:
        message = parse_message(record.value, TICKET_EVENTS)
    except InvalidMessage:
        return None  # the service dead-lettered it when it first came
    if message.ticket_id is None:
        return None
    return Delivery(message, tp.topic, tp.partition, record.offset, record.key)


async def record_due_as_handled(store: DeadlineStore, policy: EscalationPolicy, at: datetime) -> int:
    """Every warning and breach due by ``at``, counted as sent without sending anything; the clocks changed."""
    handled = 0
    while True:
        steps = [s for s in (on_time(d, policy, at) for d in await store.due(at, 500)) if s.after != s.before]
        if not steps:
            return handled  # nothing due left (a due row that changes nothing is left as it is)
        # The breaches are counted (their ids name the clock's run): after an upgrade, the figures get them too.
        breaches = {s.before.ticket_id: s.breaches for s in steps if s.breached}
        handled += len(await store.settle([(s.before, s.after) for s in steps], at, breaches=breaches))


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m services.escalation.rebuild",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--handled-before",
        type=datetime.fromisoformat,
        default=None,
        help="ISO time with offset (e.g. 2026-11-26T14:00:00+00:00): warnings and breaches due before it are "
        "recorded as handled; later ones are left for the service to send. Default: now. Set it to when the "
        "version before stopped, so that breaches that fell due while no escalation ran are still sent.",
    )
    return parser.parse_args(argv)


async def _main(
    common: CommonSettings, settings: Settings, policy: EscalationPolicy, handled_before: datetime | None
) -> Rebuilt:
    store = DeadlineStore(settings.database_url)
    try:
        await store.create_schema()
        return await rebuild(common, store, policy, SystemClock(), handled_before)
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    if args.handled_before is not None and args.handled_before.tzinfo is None:
        print("--handled-before needs a UTC offset, e.g. 2026-11-26T14:00:00+00:00", file=sys.stderr)
        return 2
    try:
        common, settings = load(CommonSettings), load(Settings)
        policy = escalation_policy(settings)
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    configure_logging("escalation-rebuild", common.log_level, common.log_format)
    try:
        result = asyncio.run(_main(common, settings, policy, args.handled_before))
    except ServiceRunning as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"clocks rebuilt: {result.events} events replayed ({result.skipped} skipped), "
        f"{result.handled} clocks with warnings or breaches recorded as handled"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
