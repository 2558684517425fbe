"""Escalation timers at scale: 100,000 open tickets, how late the due ones fire, and the service's memory.

The store is filled with ``--open`` pending level-1 deadlines (the SLA clocks
of unclaimed tickets): ``--due`` of them fall due over ``--window`` seconds
after the service has started, the rest far in the future. Then the real
service (``python -m services.escalation``, real Kafka) runs until every due
one has fired. The fire lag of a deadline is the moment its escalation
command went to Kafka (the record's timestamp on the commands topic; the timer
stores its decision first, then publishes) minus its due time. Peak memory is
the service process's VmHWM.

Needs a broker: ``KAFKA_BOOTSTRAP_SERVERS`` (``eval "$(scripts/infra env)"``).
Last line of output: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from contracts.commands import EscalateTicket
from contracts.registry import parse_message
from contracts.topics import ESCALATION_COMMANDS
from devtools.processes import free_port
from runtime.topics_admin import ensure_topics
from services.escalation.adapters.store import DeadlineStore
from services.escalation.domain.deadline import Deadline, DeadlineState

CHUNK = 5_000


def clocks(count: int, due: int, start: datetime, window_s: float) -> list[Deadline]:
    """``count`` pending deadlines; the first ``due`` spread evenly over the window after ``start``."""
    out = []
    for n in range(count):
        at = start + timedelta(seconds=window_s * n / due) if n < due else start + timedelta(days=30, seconds=n)
        out.append(Deadline(uuid.UUID(int=n + 1), f"HD-{n + 1}", 1, "hardware", at, DeadlineState.PENDING,
                            f"corr-{n}", running_since=at - timedelta(hours=4), policy="p3-normal"))
    return out


async def fill(url: str, rows: list[Deadline]) -> None:
    store = DeadlineStore(url)
    await store.create_schema()
    now = datetime.now(UTC)
    try:
        for i in range(0, len(rows), CHUNK):
            async with store.changes() as changes:
                await changes.save(rows[i : i + CHUNK], now)
    finally:
        await store.close()


async def fired_lags(bootstrap: str, prefix: str, expected: int) -> list[float]:
    """From each escalation's deadline to its command's timestamp on the commands topic, in seconds."""
    consumer = AIOKafkaConsumer(ESCALATION_COMMANDS.qualified(prefix), bootstrap_servers=bootstrap,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    lags: list[float] = []
    try:
        end = time.monotonic() + 30
        while len(lags) < expected and time.monotonic() < end:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    command = parse_message(record.value)
                    if isinstance(command, EscalateTicket):
                        lags.append(record.timestamp / 1000 - command.data.deadline.timestamp())
    finally:
        await consumer.stop()
    return sorted(lags)


async def unsent(url: str) -> int:
    store = DeadlineStore(url)
    try:
        return len(await store.unsent())
    finally:
        await store.close()


async def pending(url: str) -> int:
    store = DeadlineStore(url)
    try:
        return await store.pending_count()
    finally:
        await store.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


async def main(args: argparse.Namespace) -> dict[str, float | int]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, prefix)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/escalation.db"
        start = datetime.now(UTC) + timedelta(seconds=args.lead)
        began = time.monotonic()
        await fill(url, clocks(args.open, args.due, start, args.window))
        print(f"filled {args.open} open timers in {time.monotonic() - began:.1f}s", file=sys.stderr)
        open_timers = await pending(url)
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_TOPIC_PREFIX": prefix,
               "ESCALATION_DATABASE_URL": url, "ESCALATION_HTTP_PORT": str(free_port()), "LOG_LEVEL": "WARNING"}
        # The real service in its own process, so its peak memory is its own.
        service = subprocess.Popen([sys.executable, "-m", "services.escalation"], env=env)  # noqa: ASYNC220
        try:
            deadline = time.monotonic() + args.lead + args.window + 60
            while time.monotonic() < deadline:
                await asyncio.sleep(1)
                if service.poll() is not None:
                    raise SystemExit(f"the service exited with {service.returncode}")
                window_over = datetime.now(UTC) > start + timedelta(seconds=args.window + 2)
                if window_over and await pending(url) <= open_timers - args.due and await unsent(url) == 0:
                    break
            peak = peak_rss_mb(service.pid)
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=30)
        lags = await fired_lags(bootstrap, prefix, args.due)
    return {
        "open_timers": open_timers,
        "fired": len(lags),
        "expected_fired": args.due,
        "fire_lag_p50_ms": round(percentile(lags, 0.50) * 1000, 1),
        "fire_lag_p99_ms": round(percentile(lags, 0.99) * 1000, 1),
        "fire_lag_max_ms": round((lags[-1] if lags else float("nan")) * 1000, 1),
        "peak_memory_mb": round(peak, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--open", type=int, default=100_000, help="open tickets (pending timers)")
    parser.add_argument("--due", type=int, default=3_000, help="timers that fall due during the run")
    parser.add_argument("--window", type=float, default=30.0, help="seconds over which they fall due")
    parser.add_argument("--lead", type=float, default=15.0, help="seconds from filling to the first due timer")
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result))
