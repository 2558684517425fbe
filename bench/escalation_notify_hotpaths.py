"""Micro-benchmark of escalation's and notify's ticket-event consumers, without Kafka.

    python -m bench.escalation_notify_hotpaths [--tickets 4000] [--batch 200]
        [--claimed 0.5] [--resolved 0.1] [--postgres postgresql+asyncpg://...]

Builds the ticket events a busy help desk puts on the events topic (every
ticket opened, prioritised and routed; some claimed; some of those resolved),
interleaved across tickets as they arrive, each ticket's own events in order,
and cut into consumer batches. Each service's handler then consumes every
batch against a fresh database (SQLite, or a new database on the PostgreSQL
server given), notify sending its resolution e-mails to a real SMTP server
(``devtools.mailbox`` in a subprocess). Only the handler calls are timed; the
results are checked afterwards, including that a redelivered stretch of
batches changes nothing. Logging runs as in the service (JSON, INFO unless
--log-level says otherwise) into /dev/null, so its cost counts.

Progress goes to stderr; the last line on stdout is JSON: events per second
(wall clock) and CPU microseconds per event, per service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from contracts.envelope import Envelope, Payload, new_envelope
from contracts.incidents import Channel, CustomerProfile
from contracts.tickets import (
    TicketClaimed,
    TicketClaimedData,
    TicketOpened,
    TicketOpenedData,
    TicketPrioritised,
    TicketPrioritisedData,
    TicketResolved,
    TicketResolvedData,
    TicketRouted,
    TicketRoutedData,
)
from devtools.processes import free_port
from runtime.consumer import Delivery
from runtime.logs import configure_logging
from services.escalation.adapters.store import DeadlineStore, deadlines
from services.escalation.clock import SystemClock
from services.escalation.config import SHIPPED_LEVELS
from services.escalation.domain.policy import EscalationPolicy
from services.escalation.handlers import TicketEventHandler as EscalationHandler
from services.escalation.levels import load_levels
from services.notify.adapters.smtp import SmtpMailer
from services.notify.adapters.store import NotifyStore, customer_contacts, sent_notifications
from services.notify.config import Settings as NotifySettings
from services.notify.handlers import Outbox
from services.notify.handlers import TicketEventHandler as NotifyHandler
from services.notify.rendering import Templates

Batch = list[Delivery[Any]]
TOPIC = "helpdesk.tickets.events.v1"
# Where, counted in tickets opened since, each kind of event arrives after its ticket's opening.
LAG = {"opened": 0.0, "prioritised": 3.0, "routed": 3.0, "claimed": 40.0, "resolved": 60.0}


def progress(message: str) -> None:
    print(f"[bench/escalation_notify_hotpaths] {message}", file=sys.stderr, flush=True)


def ticket_events(tickets: int, claimed: float, resolved: float, rng: random.Random) -> list[Envelope[Any]]:
    """Every ticket's events, in the order the events topic delivers them."""
    timeline: list[tuple[float, int, Envelope[Any]]] = []
    start = datetime.now(UTC)
    for i in range(tickets):
        ticket, number, at = uuid.uuid4(), f"HD-{i + 1}", start + timedelta(milliseconds=i)
        events = _lifecycle(ticket, number, at, rng, claim=rng.random() < claimed, resolve_share=resolved / claimed)
        timeline.extend((i + LAG[kind], version, event) for version, (kind, event) in enumerate(events, start=1))
    timeline.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in timeline]


def _lifecycle(
    ticket: uuid.UUID, number: str, at: datetime, rng: random.Random, *, claim: bool, resolve_share: float
) -> list[tuple[str, Envelope[Any]]]:
    def event(model: type[Envelope[Any]], data: Payload) -> Envelope[Any]:
        return new_envelope(model, data, ticket_id=ticket, occurred_at=at, correlation_id=f"corr-{number}")

    customer = CustomerProfile(identified=True, customer_id=f"c-{number}", name="Ada Lovelace",
                               email=f"ada+{number}@example.com", department="Finance")
    kinds = [
        ("opened", event(TicketOpened, TicketOpenedData(
            number=number, version=1, channel=Channel.EMAIL, channel_message_id=f"m-{number}", reported_at=at,
            subject="Printer on fire", description="Smoke from tray 2", components=["printer"], customer=customer))),
        ("prioritised", event(TicketPrioritised, TicketPrioritisedData(
            number=number, version=2, priority=rng.choice([1, 2, 3, 4, 5]), rule="matrix", reason="impact x urgency",
            by="routing"))),
        ("routed", event(TicketRouted, TicketRoutedData(
            number=number, version=3, queue=rng.choice(["hardware", "network", "accounts"]), rule="components",
            reason="printer"))),
    ]
    if claim:
        kinds.append(("claimed", event(TicketClaimed, TicketClaimedData(number=number, version=4, agent_id="agent-7"))))
        if rng.random() < resolve_share:
            kinds.append(("resolved", event(TicketResolved, TicketResolvedData(
                number=number, version=5, resolution="Replaced the fuser unit.", resolved_by="agent-7"))))
    return kinds


def batches(events: Sequence[Envelope[Any]], size: int) -> list[Batch]:
    deliveries = [Delivery(e, TOPIC, hash(e.ticket_id) % 6, offset, str(e.ticket_id).encode())
                  for offset, e in enumerate(events)]
    return [deliveries[i : i + size] for i in range(0, len(deliveries), size)]


async def timed(handler: Callable[[Batch], Awaitable[None]], work: list[Batch], name: str) -> dict[str, float]:
    events = sum(len(b) for b in work)
    wall, cpu = time.perf_counter(), time.process_time()
    for n, batch in enumerate(work, start=1):
        await handler(batch)
        if n % max(1, len(work) // 5) == 0:
            progress(f"{name}: {n}/{len(work)} batches")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"events": events, "events_per_s": round(events / wall, 1), "cpu_us_per_event": round(cpu / events * 1e6, 1)}


@asynccontextmanager
async def fresh_database(postgres: str | None) -> AsyncIterator[str]:
    if postgres is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite+aiosqlite:///{folder}/bench.db"
        return
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(postgres, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def count(engine: Any, table: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


async def bench_escalation(work: list[Batch], postgres: str | None, expect_pending: int) -> dict[str, float]:
    async with fresh_database(postgres) as url:
        store = DeadlineStore(url)
        await store.create_schema()
        try:
            policy = EscalationPolicy(load_levels(SHIPPED_LEVELS), timedelta(minutes=15))
            handler = EscalationHandler(store, policy, SystemClock())
            result = await timed(handler, work, "escalation")
            for batch in work[: max(1, len(work) // 10)]:
                await handler(batch)  # redelivered
            pending = await store.pending_count()
            assert pending == expect_pending, f"escalation: {pending} deadlines pending, expected {expect_pending}"
            queued = await count(store.reader, deadlines, deadlines.c.queue.is_not(None))
            assert queued == await count(store.reader, deadlines), "escalation: a routed ticket has no queue"
        finally:
            await store.close()
    return result


async def bench_notify(work: list[Batch], postgres: str | None, tickets: int, resolved: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as mail_dir:
        port = free_port()
        mailbox = subprocess.Popen(
            [sys.executable, "-m", "devtools.mailbox", "--port", str(port), "--dir", mail_dir],
            stdout=subprocess.DEVNULL,
        )
        try:
            await _wait_listening(port)
            async with fresh_database(postgres) as url:
                store = NotifyStore(url)
                await store.create_schema()
                try:
                    mailer = SmtpMailer(NotifySettings(database_url=url, smtp_port=port))
                    handler = NotifyHandler(store, Outbox(store, mailer, Templates()))
                    result = await timed(handler, work, "notify")
                    for batch in work[-max(1, len(work) // 10) :]:
                        await handler(batch)  # redelivered: the resolutions in it are not mailed again
                    assert await count(store.reader, customer_contacts) == tickets, "notify: a contact is missing"
                    assert await count(store.reader, sent_notifications) == resolved, "notify: sent count is off"
                finally:
                    await store.close()
        finally:
            mailbox.terminate()
            mailbox.wait()
        mailed = len(list(Path(mail_dir).glob("*.eml")))
        assert mailed == resolved, f"notify: {mailed} e-mails received, expected {resolved}"
    return result


async def _wait_listening(port: int) -> None:
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the mailbox never listened")


def quiet_json_logs(level: str) -> None:
    """The services' logging (JSON), rendered but written to /dev/null."""
    configure_logging("bench", level)
    handler = logging.getLogger().handlers[0]
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process


async def run(args: argparse.Namespace) -> dict[str, Any]:
    quiet_json_logs(args.log_level)
    events = ticket_events(args.tickets, args.claimed, args.resolved, random.Random(args.seed))
    work = batches(events, args.batch)
    kinds = {t: sum(1 for e in events if e.type == t) for t in sorted({e.type for e in events})}
    progress(f"{len(events)} events in {len(work)} batches of up to {args.batch}: {kinds}")
    unclaimed = args.tickets - kinds.get("ticket.claimed", 0)
    escalation = await bench_escalation(work, args.postgres, unclaimed)
    progress(f"escalation: {escalation}")
    notify = await bench_notify(work, args.postgres, args.tickets, kinds.get("ticket.resolved", 0))
    progress(f"notify: {notify}")
    return {
        "database": "postgresql" if args.postgres else "sqlite",
        "tickets": args.tickets,
        "batch": args.batch,
        "events": len(events),
        "escalation_events_per_s": escalation["events_per_s"],
        "escalation_cpu_us_per_event": escalation["cpu_us_per_event"],
        "notify_events_per_s": notify["events_per_s"],
        "notify_cpu_us_per_event": notify["cpu_us_per_event"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=200, help="deliveries per consumer batch (Kafka: up to 500)")
    parser.add_argument("--claimed", type=float, default=0.5, help="share of tickets claimed")
    parser.add_argument("--resolved", type=float, default=0.1, help="share of tickets resolved (all claimed first)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--log-level", default="INFO", help="the services' LOG_LEVEL (default INFO, as deployed)")
    parser.add_argument("--postgres", metavar="URL", help="run on a new database on this PostgreSQL server")
    args = parser.parse_args()
    if not 0 < args.claimed <= 1 or not 0 <= args.resolved <= args.claimed:
        parser.error("need 0 < --claimed <= 1 and 0 <= --resolved <= --claimed")
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
