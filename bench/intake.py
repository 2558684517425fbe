"""Intake benchmark: e-mails per second over SMTP, and topic messages per second, to incident.identified.

    bench/intake [--emails 2000] [--connections 32] [--topic-messages 20000]

Starts intake as a process (``python -m services.intake`` on SQLite, its SMTP
receiver on a free port, the flood guard off for mail; on for the topic path
with a limit no bench sender reaches, so its cost is in the figure) on fresh topics of the broker
in ``KAFKA_BOOTSTRAP_SERVERS`` (else the one ``scripts/infra`` runs), then:

1. e-mail: sends N mails over SMTP on C concurrent connections (aiosmtplib;
   each ``250`` means the incident is on Kafka) and measures until every one
   is identified on ``helpdesk.incidents.identified.v1`` (what the ticket
   service opens tickets from);
2. topic: publishes M ``incident.reported`` messages straight onto the
   reported topic and measures until every one is identified.

Senders are the directory's customers and unknown addresses, half each.
Progress goes to stderr; the last line on stdout is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.topics import INCIDENTS_IDENTIFIED, INCIDENTS_REPORTED
from devtools.processes import Process, free_port
from runtime.topics_admin import ensure_topics
from tests.support.kafka import incident

ROOT = Path(__file__).resolve().parents[1]
CUSTOMERS = ["ada.lovelace@example.com", "grace.hopper@example.com", "alan.turing@example.com", "tbl@example.com"]


def progress(message: str) -> None:
    print(f"[bench/intake] {message}", file=sys.stderr, flush=True)


def kafka_bootstrap() -> str:
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return servers
    subprocess.run([str(ROOT / "scripts" / "infra"), "start", "kafka"], check=True, stdout=sys.stderr)
    env = subprocess.run([str(ROOT / "scripts" / "infra"), "env"], check=True, capture_output=True, text=True).stdout
    return next(line.split("=", 1)[1].strip() for line in env.splitlines() if "KAFKA_BOOTSTRAP_SERVERS=" in line)


class Identified:
    """Counts identified incidents per channel as they arrive."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
        )
        self.count: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for records in (await self.consumer.getmany(timeout_ms=100, max_records=5000)).values():
                for record in records:
                    channel = json.loads(record.value)["data"]["channel"]
                    self.count[channel] = self.count.get(channel, 0) + 1

    async def until(self, channel: str, n: int, timeout: float = 600.0) -> None:
        deadline = time.perf_counter() + timeout
        last = time.perf_counter()
        while self.count.get(channel, 0) < n:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"only {self.count.get(channel, 0)} of {n} {channel} incidents identified")
            if time.perf_counter() - last > 2:
                progress(f"{channel}: {self.count.get(channel, 0)}/{n} identified")
                last = time.perf_counter()
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.consumer.stop()


def mail(n: int, run: str) -> bytes:
    m = EmailMessage()
    m["From"] = CUSTOMERS[n % 4] if n % 2 else f"visitor{n}@elsewhere.example"
    m["To"] = "helpdesk@example.com"
    m["Subject"] = f"Bench mail {n}: printer offline"
    m["Message-ID"] = f"<{run}.{n}@bench.example>"
    m.set_content("The printer on the 3rd floor shows 'offline' since this morning.\n" * 5)
    return m.as_bytes()


async def send_mails(port: int, n: int, connections: int, run: str) -> float:
    """Send ``n`` mails on ``connections`` sessions; the seconds until the last 250."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def session() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await smtp.connect()
        try:
            while not queue.empty():
                i = queue.get_nowait()
                await smtp.sendmail("relay@bench.example", ["helpdesk@example.com"], mail(i, run))
        finally:
            await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(connections)))
    return time.perf_counter() - started


async def publish(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        pending = []
        for i in range(n):
            contact = {"email": CUSTOMERS[i % 4]} if i % 2 else {"phone": f"+44 7700 9{i % 100000:05d}"}
            message = incident(f"Bench incident {i}", **contact)
            pending.append(
                await producer.send(topic, message.model_dump_json().encode(), key=message.data.partition_key.encode())
            )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def bench(args: argparse.Namespace) -> dict[str, object]:
    bootstrap = kafka_bootstrap()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix)
    state = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    http_port, smtp_port = free_port(), free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_TOPIC_PREFIX": prefix, "PYTHONUNBUFFERED": "1",
        "INTAKE_HTTP_PORT": str(http_port), "INTAKE_SMTP_PORT": str(smtp_port), "INTAKE_FLOOD_MAX_PER_SENDER": "0",
        "INTAKE_FLOOD_TOPIC_MAX_PER_SENDER": "1000000",
        "INTAKE_DATABASE_URL": f"sqlite+aiosqlite:///{state / 'intake.db'}", "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    intake = Process(
        "intake",
        [sys.executable, "-m", "services.intake"],
        env,
        state / "intake.log",
        f"http://127.0.0.1:{http_port}/readyz",
    )
    identified = Identified(bootstrap, prefix + INCIDENTS_IDENTIFIED.name)
    intake.start()
    try:
        await asyncio.to_thread(intake.wait_ready, 120)
        await identified.start()
        progress("warming up")
        await send_mails(smtp_port, 20, 2, "warmup")
        await identified.until("email", 20)

        progress(f"e-mail: {args.emails} mails over {args.connections} SMTP connections")
        started = time.perf_counter()
        accepted_s = await send_mails(smtp_port, args.emails, args.connections, uuid.uuid4().hex[:8])
        await identified.until("email", 20 + args.emails)
        email_s = time.perf_counter() - started

        progress(f"topic: {args.topic_messages} incidents published onto the reported topic")
        started = time.perf_counter()
        await publish(bootstrap, prefix + INCIDENTS_REPORTED.name, args.topic_messages)
        await identified.until("integration", args.topic_messages)
        topic_s = time.perf_counter() - started
    finally:
        await identified.stop()
        intake.stop()
    return {
        "emails": args.emails,
        "smtp_connections": args.connections,
        "emails_accepted_per_s": round(args.emails / accepted_s, 1),
        "emails_identified_per_s": round(args.emails / email_s, 1),
        "topic_messages": args.topic_messages,
        "topic_messages_identified_per_s": round(args.topic_messages / topic_s, 1),
        "targets": {"emails_per_s": 200, "topic_messages_per_s": 3000},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=32, help="concurrent SMTP sessions (a relay opens several)")
    parser.add_argument("--topic-messages", type=int, default=20000)
    result = asyncio.run(bench(parser.parse_args()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
