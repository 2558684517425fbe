"""End-to-end benchmark: incidents per second from the intake topic to "routed and visible".

    bench/e2e [--incidents 20000] [--rate 100] [--latency-seconds 30]

Starts what it needs (Kafka through scripts/infra, the five services as
processes on SQLite, a mailbox), then on fresh topics:

1. throughput: publishes N incidents onto the intake topic as fast as the
   producer goes and measures until every one is routed (priority and queue
   set) and visible in the ticket query API;
2. latency: a steady offered load (default 100 incidents/s) and, per
   incident, the time from publish to routed. "Routed" is observed as the
   ``ticket.routed`` event on the events topic: the ticket service relays an
   event only after the transaction that appended it (and updated the query
   API's read model) committed, so the event's arrival means the ticket is
   visible; a sample is checked over HTTP as well;
3. the raw aiokafka produce→consume rate on the same broker, for scale.

Progress goes to stderr; the last line on stdout is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.registry import parse_message
from contracts.topics import INCIDENTS_REPORTED, TICKET_EVENTS_TOPIC
from devtools.demo import agent_token, find_ticket
from devtools.lag import groups_lag
from devtools.processes import Suite, free_port
from runtime.topics_admin import ensure_topics
from devtools.demo import sample_incident as incident

ROOT = Path(__file__).resolve().parents[1]


def progress(message: str) -> None:
    print(f"[bench/e2e] {message}", file=sys.stderr, flush=True)


def kafka_bootstrap() -> str:
    subprocess.run([str(ROOT / "scripts" / "infra"), "start", "kafka"], check=True, stdout=sys.stderr)
    env = subprocess.run([str(ROOT / "scripts" / "infra"), "env"], check=True, capture_output=True, text=True).stdout
    for line in env.splitlines():
        if "KAFKA_BOOTSTRAP_SERVERS=" in line:
            return line.split("=", 1)[1].strip()
    raise RuntimeError("scripts/infra env did not give KAFKA_BOOTSTRAP_SERVERS")


class RoutedWatcher:
    """Follows the events topic and records when each correlation id was routed."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
        self.routed: dict[str, float] = {}
        self.ticket_of: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    if b'"ticket.routed"' not in (record.value or b""):
                        continue
                    event = parse_message(record.value)
                    self.routed.setdefault(event.correlation_id, now)
                    self.ticket_of[event.correlation_id] = event.data.number

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.consumer.stop()


async def drained(bootstrap: str, prefix: str, timeout: float = 300.0) -> None:
    """Wait until every consumer group of the suite has caught up (escalation and notify included)."""
    deadline = time.perf_counter() + timeout
    while True:
        lag = await groups_lag(bootstrap, prefix)
        if lag and not any(lag.values()):
            return
        if time.perf_counter() > deadline:
            raise RuntimeError(f"consumers still behind after {timeout:.0f}s: {lag}")
        progress(f"waiting for consumers to catch up: {sum(lag.values())} records behind")
        await asyncio.sleep(2)


async def warm_up(producer: AIOKafkaProducer, topic: str, watcher: RoutedWatcher) -> None:
    """One incident through the whole path first, so consumer groups have their partitions."""
    message = incident("Warm-up incident", email="warmup@customers.example")
    await producer.send_and_wait(topic, message.model_dump_json().encode(), key=message.data.partition_key.encode())
    deadline = time.perf_counter() + 120
    while message.correlation_id not in watcher.routed:
        if time.perf_counter() > deadline:
            raise RuntimeError("the warm-up incident was not routed within 120 s")
        await asyncio.sleep(0.1)


async def throughput(producer: AIOKafkaProducer, topic: str, watcher: RoutedWatcher, n: int) -> tuple[float, list[str]]:
    ids = []
    started = time.perf_counter()
    futures = []
    for i in range(n):
        message = incident(f"Bench incident {i}", email=f"bench{i % 500}@customers.example")
        ids.append(message.correlation_id)
        futures.append(await producer.send(topic, message.model_dump_json().encode(), key=message.data.partition_key.encode()))
        if len(futures) >= 2000:
            await asyncio.gather(*futures)
            futures.clear()
    await asyncio.gather(*futures)
    progress(f"published {n} incidents in {time.perf_counter() - started:.1f}s")
    last_report = 0.0
    while sum(1 for c in ids if c in watcher.routed) < n:
        await asyncio.sleep(0.2)
        if time.perf_counter() - last_report > 5:
            last_report = time.perf_counter()
            done = sum(1 for c in ids if c in watcher.routed)
            progress(f"routed {done}/{n} ({done / (last_report - started):.0f}/s)")
    finished = max(watcher.routed[c] for c in ids)
    return n / (finished - started), ids


async def latency(producer: AIOKafkaProducer, topic: str, watcher: RoutedWatcher, rate: float, seconds: float) -> list[float]:
    sent: dict[str, float] = {}
    interval = 1.0 / rate
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < seconds:
        target = started + i * interval
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        message = incident(f"Steady incident {i}", email=f"steady{i % 200}@customers.example")
        await producer.send(topic, message.model_dump_json().encode(), key=message.data.partition_key.encode())
        sent[message.correlation_id] = time.perf_counter()
        i += 1
    progress(f"offered {i} incidents at {rate:.0f}/s; waiting for the last to be routed")
    deadline = time.perf_counter() + 60
    while any(c not in watcher.routed for c in sent) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    missing = [c for c in sent if c not in watcher.routed]
    if missing:
        raise RuntimeError(f"{len(missing)} incidents were not routed within 60 s")
    return [(watcher.routed[c] - t) * 1000 for c, t in sent.items()]


async def raw_kafka(bootstrap: str, topic: str, n: int = 100_000) -> float:
    payload = b"x" * 700  # about the size of an incident message
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])
    await admin.close()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2)
    await consumer.start()
    await producer.start()
    started = time.perf_counter()

    async def consume() -> None:
        seen = 0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            seen += sum(len(r) for r in batch.values())

    reader = asyncio.create_task(consume())
    futures = []
    for i in range(n):
        futures.append(await producer.send(topic, payload, key=str(i % 1000).encode()))
        if len(futures) >= 5000:
            await asyncio.gather(*futures)
            futures.clear()
    await asyncio.gather(*futures)
    await reader
    elapsed = time.perf_counter() - started
    await producer.stop()
    await consumer.stop()
    return n / elapsed


async def check_visible_over_http(suite: Suite, watcher: RoutedWatcher, sample: list[str]) -> None:
    token = agent_token(suite, "bench-agent")
    async with httpx.AsyncClient(base_url=suite.url("tickets"), headers={"Authorization": f"Bearer {token}"}) as http:
        for correlation_id in sample:
            ticket = await find_ticket(http, watcher.ticket_of[correlation_id])
            if not (ticket and ticket.get("queue") and ticket.get("priority")):
                raise RuntimeError(f"ticket {watcher.ticket_of[correlation_id]} is not routed in the query API: {ticket}")


async def run(args: argparse.Namespace) -> dict[str, object]:
    bootstrap = kafka_bootstrap()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix)
    state = Path(tempfile.mkdtemp(prefix="helpdesk-bench-"))
    ports = {name: free_port() for name in ("intake", "tickets", "routing", "escalation", "notify")}
    suite = Suite(
        state_dir=state, kafka_bootstrap=bootstrap, topic_prefix=prefix, ports=ports, smtp_port=free_port(), intake_smtp_port=free_port(),
        extra_env={
            "ESCALATION_UNCLAIMED_AFTER_S": "3600",
            "LOG_LEVEL": "WARNING",
            # the bench sends many incidents per customer in seconds: no flood guard on the topic path
            "INTAKE_FLOOD_TOPIC_MAX_PER_SENDER": "0",
        },
    )
    progress(f"starting the five services (state in {state})")
    suite.start()
    watcher = RoutedWatcher(bootstrap, prefix + TICKET_EVENTS_TOPIC.name)
    await watcher.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    topic = prefix + INCIDENTS_REPORTED.name
    try:
        await warm_up(producer, topic, watcher)
        progress(f"throughput: {args.incidents} incidents")
        rate, ids = await throughput(producer, topic, watcher, args.incidents)
        await check_visible_over_http(suite, watcher, random.sample(ids, min(50, len(ids))))
        await drained(bootstrap, prefix)
        progress(f"throughput {rate:.0f} incidents/s; latency at {args.rate}/s for {args.latency_seconds}s")
        lat = await latency(producer, topic, watcher, args.rate, args.latency_seconds)
        lat.sort()
        raw = await raw_kafka(bootstrap, prefix + "bench.raw") if args.raw else 0.0
    finally:
        await producer.stop()
        await watcher.stop()
        suite.stop()
    return {
        "incidents": args.incidents,
        "incidents_per_s": round(rate, 1),
        "p50_ms": round(statistics.median(lat), 1),
        "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 1),
        "latency_samples": len(lat),
        "offered_rate_per_s": args.rate,
        "raw_kafka_msgs_per_s": round(raw, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--no-raw", dest="raw", action="store_false", help="skip the raw Kafka measurement")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
