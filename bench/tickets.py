"""The ticket store's speed: appending, replaying, and reading at a big read model, on SQLite and PostgreSQL.

    eval "$(scripts/infra env)"
    python -m bench.tickets [--tickets 1000000] [--databases sqlite,postgresql] [--explain]

Per database, on a fresh one (PostgreSQL: a new database on the server of
``HELPDESK_TEST_POSTGRES_URL``, dropped after; SQLite: a temporary file):

1. ``append_events_per_s``: tickets' whole lives (opened, prioritised, routed,
   most claimed and resolved), decided by the domain and wrapped before the clock
   starts, saved with ``repository.save`` (the events and the read-model rows, as
   the service writes them) ``batched`` (``--batch`` events a transaction, as a
   consumer batch is) and ``one_per_transaction`` (as an agent's request is).
2. ``replay_events_per_s``: ``repository.rebuild_read_model`` folds that log into
   tickets and writes their rows again; events of the log per second.
3. The read model is then filled up to ``--tickets`` tickets. Saving a million
   tickets through the service would take over an hour here, so the filler folds
   one realistic ticket of each kind (fate x queue x priority: 375) with the
   domain, and bulk-inserts copies of them (new ids, numbers, message ids and
   times, the year before now) into the service's own tables: read-model rows,
   events and numbers, at the driver (PostgreSQL: COPY), the read model's
   indexes built after. 5 % of the tickets wait unclaimed in 25 queues, 5 % are
   claimed, the rest resolved.
4. ``get_ticket`` (``repository.find`` by number + ``repository.load`` + the
   row the API answers with) and ``queue_head`` (``read_model.queue_line``, the
   50 a queue page shows) of random tickets and queues: p50/p99 in ms, each
   call on its own reader connection, as the API makes them.

``--explain`` records every statement the service runs on the write path
(handlers, relay, census) and the read paths, and prints each one's plan at that
size (SQLite ``EXPLAIN QUERY PLAN``, PostgreSQL ``EXPLAIN ANALYZE``) to stderr.

Progress goes to stderr; the last line on stdout is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Table, Uuid, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.tickets_hotpaths import explain_paths
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import Channel, CustomerProfile, IncidentIdentified, IncidentIdentifiedData
from runtime.database import UtcDateTime
from runtime.logs import configure_logging
from services.tickets.adapters import event_store, read_model, repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.repository import Change
from services.tickets.domain import Ticket, open_ticket

QUEUES = [f"queue-{i:02d}" for i in range(25)]
WORDS = [
    "printer",
    "vpn",
    "login",
    "password",
    "email",
    "outlook",
    "teams",
    "screen",
    "laptop",
    "network",
    "wifi",
    "sap",
    "invoice",
    "payroll",
    "slow",
    "broken",
    "error",
    "crash",
    "cannot",
    "access",
    "denied",
    "timeout",
    "server",
    "database",
    "backup",
    "disk",
    "license",
    "badge",
    "phone",
    "headset",
    "monitor",
]
AGENTS = [f"agent-{i}" for i in range(200)]


def progress(message: str) -> None:
    print(f"[bench/tickets] {message}", file=sys.stderr, flush=True)


# --- tickets as the service would record them -------------------------------------------------


def incident(rng: random.Random, i: int) -> IncidentIdentifiedData:
    words = rng.sample(WORDS, 4)
    return IncidentIdentifiedData(
        channel=rng.choice(list(Channel)),
        channel_message_id=f"bench-{i}-{uuid.uuid4().hex}",
        received_at=datetime.now(UTC),
        subject=f"{words[0].capitalize()} {words[1]} {words[2]} since this morning",
        description=" ".join(rng.choice(WORDS) for _ in range(60)) + ". Tried a restart; same again.",
        components=words[2:],
        impact=rng.choice(["high", "medium", "low"]),
        urgency=rng.choice(["high", "medium", "low"]),
        customer=CustomerProfile(
            identified=True,
            identified_by="email",
            customer_id=f"c-{i % 5000}",
            name=f"Customer {i % 5000}",
            email=f"c{i % 5000}@example.com",
            phone="+4930123456",
            location="Berlin, 3rd floor",
            department=f"Dept-{i % 30}",
            hardware=["ThinkPad T14", "Dell U2720Q"],
            software=["Windows 11", "Office 365"],
        ),
    )


FATES = ("open", "claimed", "resolved")
PRIORITIES = (1, 2, 3, 4, 5)


def life(
    rng: random.Random, i: int, number: str, ticket_id: uuid.UUID, kind: tuple[str, str, int] | None = None
) -> list[Envelope[Any]]:
    """A ticket's events, decided by the domain, up to its ``kind``: (fate, queue, priority), random if None.

    Fates: open (routed and waiting in the queue), claimed, resolved.
    """
    fate, queue, priority = kind or (fate_of(rng), rng.choice(QUEUES), rng.choice(PRIORITIES))
    cause = new_envelope(IncidentIdentified, incident(rng, i), correlation_id=f"contact-{i}")
    at = datetime.now(UTC)
    events = repository.recorded(ticket_id, [open_ticket(number, cause.data)], at=at, cause=cause)  # type: ignore[arg-type]
    ticket = Ticket.from_events(ticket_id, [e.data for e in events])
    steps = [
        lambda t: t.route(
            priority=priority,
            priority_rule="impact",
            priority_reason="impact x urgency",
            queue=queue,
            queue_rule="component",
            queue_reason="component",
        )
    ]
    agent = rng.choice(AGENTS)
    if fate in ("claimed", "resolved"):
        steps.append(lambda t: t.claim(agent))
    if fate == "resolved":
        steps.append(lambda t: t.resolve(agent, "Reset the profile; confirmed working with the customer."))
    for step in steps:
        decided = step(ticket)
        ticket = ticket.applied(decided)
        events += repository.recorded(ticket_id, decided, at=at, correlation_id=cause.correlation_id)
    return events


def fate_of(rng: random.Random) -> str:
    draw = rng.random()
    return "open" if draw < 0.05 else "claimed" if draw < 0.10 else "resolved"


# --- 1. appending -----------------------------------------------------------------------------


async def numbered(db: TicketDatabase, count: int) -> list[tuple[uuid.UUID, str]]:
    ids = [uuid.uuid4() for _ in range(count)]
    async with db.writer.begin() as conn:
        numbers = await event_store.allocate_numbers(conn, ids)
    return [(t, numbers[t]) for t in ids]


async def append_batched(db: TicketDatabase, rng: random.Random, events: int, batch: int) -> float:
    lives = [life(rng, i, n, t) for i, (t, n) in enumerate(await numbered(db, events // 4))]
    transactions: list[list[Change]] = [[]]
    size = 0
    for events_of in lives:
        if size + len(events_of) > batch:
            transactions.append([])
            size = 0
        transactions[-1].append(Change.of(None, events_of))
        size += len(events_of)
    total = sum(len(e) for e in lives)
    started = time.perf_counter()
    for changes in transactions:
        async with db.writer.begin() as conn:
            await repository.save(conn, changes)
    return total / (time.perf_counter() - started)


async def append_one_per_transaction(db: TicketDatabase, rng: random.Random, events: int) -> float:
    changes: list[Change] = []
    for i, (ticket_id, number) in enumerate(await numbered(db, events // 4)):
        before = None
        for event in life(rng, i, number, ticket_id):
            changes.append(Change.of(before, [event]))
            before = changes[-1].ticket
    started = time.perf_counter()
    for change in changes:
        async with db.writer.begin() as conn:
            await repository.save(conn, [change])
    return len(changes) / (time.perf_counter() - started)


# --- 2. replaying -----------------------------------------------------------------------------


async def replay(db: TicketDatabase) -> tuple[int, float]:
    async with db.reader.connect() as conn:
        events = (await conn.execute(select(func.count()).select_from(event_store.ticket_events))).scalar_one()
    started = time.perf_counter()
    await repository.rebuild_read_model(db)
    return events, events / (time.perf_counter() - started)


# --- 3. filling the read model ----------------------------------------------------------------


def random_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)  # as unique as uuid4() here, and five times cheaper


class Stored:
    """Values as the service's column types store them, so rows can go in below SQLAlchemy, at driver speed.

    SQLite: ids as 32 hex digits, times as naive UTC text, JSON as text; PostgreSQL
    (asyncpg's COPY): ids and aware times as they are, JSON as text. The filled
    tickets are read back through the service's own code, which fails loudly on a
    wrong format.
    """

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"

    def id(self, value: uuid.UUID) -> Any:
        return value.hex if self.sqlite else value

    def moment(self, value: datetime) -> Any:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else value

    def row(self, table: Table, row: dict[str, Any]) -> dict[str, Any]:
        """Every value of ``row`` stored (for a template, converted once)."""
        out = {}
        for name, value in row.items():
            kind = table.c[name].type
            if value is None:
                out[name] = None
            elif isinstance(kind, Uuid):
                out[name] = self.id(value)
            elif isinstance(kind, UtcDateTime):
                out[name] = self.moment(value)
            elif isinstance(kind, JSON):
                out[name] = json.dumps(value)
            else:
                out[name] = value
        return out


@dataclass(frozen=True)
class Template:
    """A ticket folded by the domain from its events, stored as the service stores it, to be copied."""

    events: list[dict[str, Any]]  # its ticket_events rows
    row: dict[str, Any]  # its read-model row
    message_id: str


def templates(rng: random.Random, stored: Stored) -> dict[tuple[str, str, int], Template]:
    """One ticket of every kind: each fate in each queue at each priority."""
    placeholder, now = uuid.UUID(int=0), datetime.now(UTC)
    out = {}
    for i, kind in enumerate((f, q, p) for f in FATES for q in QUEUES for p in PRIORITIES):
        events = life(rng, i, "HD-0", placeholder, kind)
        ticket = Ticket.from_events(placeholder, [e.data for e in events])
        rows = [stored.row(event_store.ticket_events, r) for r in event_store._rows(event_store.Stream(0, events))]
        row = stored.row(read_model.tickets, read_model.row(ticket, now, now))
        out[kind] = Template(rows, row, ticket.channel_message_id)
    return out


def copies(
    rng: random.Random, stored: Stored, model: Template, seq: int, opened_at: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """One more ticket like ``model``: its read-model row, its event rows and its number row (all stored)."""
    ticket_id, number, message_id = stored.id(random_id(rng)), f"{event_store.NUMBER_PREFIX}{seq}", f"fill-{seq}"
    events = []
    for offset, row in enumerate(model.events):
        data = row["data"].replace('"number":"HD-0"', f'"number":"{number}"', 1)
        data = data.replace(f'"channel_message_id":"{model.message_id}"', f'"channel_message_id":"{message_id}"', 1)
        at = stored.moment(opened_at + timedelta(minutes=offset * 7))
        events.append(
            {**row, "event_id": stored.id(random_id(rng)), "ticket_id": ticket_id, "data": data, "occurred_at": at}
        )
    ticket_row = {
        **model.row,
        "ticket_id": ticket_id,
        "number": number,
        "channel_message_id": message_id,
        "opened_at": stored.moment(opened_at),
        "updated_at": events[-1]["occurred_at"],
    }
    return ticket_row, events, {"seq": seq, "ticket_id": ticket_id}


async def fill(db: TicketDatabase, rng: random.Random, tickets: int, chunk: int = 10_000) -> int:
    """Bulk-insert tickets until the read model holds ``tickets``; returns how many were added."""
    async with db.reader.connect() as conn:
        have = (await conn.execute(select(func.count()).select_from(read_model.tickets))).scalar_one()
        last = (await conn.execute(select(func.max(event_store.ticket_numbers.c.seq)))).scalar_one() or 0
    stored = Stored(db.writer.dialect.name)
    models = templates(rng, stored)
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / max(tickets, 1)
    started, added = time.perf_counter(), 0
    indexes = [
        i for i in read_model.tickets.indexes if i._ddl_if is None or i._ddl_if.dialect == db.writer.dialect.name
    ]
    # An index built once over the filled table costs a fraction of keeping it up row by row meanwhile.
    async with db.writer.begin() as conn:
        for index in indexes:
            await conn.run_sync(index.drop)
    async with db.writer.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        while have + added < tickets:
            count = min(chunk, tickets - have - added)
            made = [
                copies(
                    rng,
                    stored,
                    models[fate_of(rng), rng.choice(QUEUES), rng.choice(PRIORITIES)],
                    last + added + k + 1,
                    start + step * (added + k),
                )
                for k in range(count)
            ]
            await bulk_insert(
                raw,
                stored,
                {
                    event_store.ticket_numbers: [m[2] for m in made],
                    event_store.ticket_events: [e for m in made for e in m[1]],
                    read_model.tickets: [m[0] for m in made],
                },
            )
            added += count
            if added % (chunk * 10) == 0 or have + added >= tickets:
                progress(f"  read model {have + added:,} tickets ({added / (time.perf_counter() - started):,.0f}/s)")
    progress(f"  indexing the read model ({', '.join(i.name for i in indexes)})")  # type: ignore[misc]
    async with db.writer.begin() as conn:
        for index in indexes:
            await conn.run_sync(index.create)
        if not stored.sqlite:  # the numbers were given explicitly: the sequence continues after them
            await conn.execute(
                text("SELECT setval(pg_get_serial_sequence('ticket_numbers', 'seq'), max(seq)) FROM ticket_numbers")
            )
    progress(f"  filled in {time.perf_counter() - started:,.0f} s")
    return added


async def bulk_insert(raw: Any, stored: Stored, rows: dict[Table, list[dict[str, Any]]]) -> None:
    """One transaction of plain inserts on the driver's connection (PostgreSQL: COPY)."""
    if not stored.sqlite:
        async with raw.transaction():
            for table, table_rows in rows.items():
                columns = list(table_rows[0])
                await raw.copy_records_to_table(
                    table.name, records=[tuple(r.values()) for r in table_rows], columns=columns
                )
        return
    await raw.execute("PRAGMA cache_size=-262144")  # 256 MB: the random ids' index pages stay in memory
    await raw.execute("BEGIN IMMEDIATE")
    for table, table_rows in rows.items():
        columns = list(table_rows[0])
        statement = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        await raw.executemany(statement, [tuple(r.values()) for r in table_rows])
    await raw.commit()


async def analysed(db: TicketDatabase) -> None:
    """Statistics for the planner, as a database that grew to this size would have them."""
    async with db.writer.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()


# --- 4. reading -------------------------------------------------------------------------------


async def sampled(call: Callable[[], Awaitable[Any]], samples: int) -> dict[str, float]:
    for _ in range(min(50, samples)):  # warm the pool and the caches first
        await call()
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(timings, n=100)
    return {"p50_ms": round(cuts[49], 2), "p99_ms": round(cuts[98], 2)}


async def reads(db: TicketDatabase, rng: random.Random, samples: int) -> dict[str, dict[str, float]]:
    async with db.reader.connect() as conn:
        last = (await conn.execute(select(func.max(event_store.ticket_numbers.c.seq)))).scalar_one()

    async def get_ticket() -> None:
        async with db.reader.connect() as conn:
            ticket_id = await repository.find(conn, f"HD-{rng.randint(1, last)}")
            (await repository.load(conn, [ticket_id]))[ticket_id].read_model_row()  # type: ignore[list-item]

    async def queue_head() -> None:
        async with db.reader.connect() as conn:
            await read_model.queue_line(conn, rng.choice(QUEUES), 50)

    return {"get_ticket": await sampled(get_ticket, samples), "queue_head": await sampled(queue_head, samples)}


# --- one database -----------------------------------------------------------------------------


async def one_database(url: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)
    db = TicketDatabase(url)
    await db.create_tables()
    try:
        progress("appending, batched")
        batched = await append_batched(db, rng, args.append_events, args.batch)
        progress(f"  {batched:,.0f} events/s; appending, one event per transaction")
        single = await append_one_per_transaction(db, rng, args.single_events)
        progress(f"  {single:,.0f} events/s; replaying the log")
        events, replayed = await replay(db)
        progress(f"  {events:,} events at {replayed:,.0f}/s; filling the read model to {args.tickets:,} tickets")
        await fill(db, rng, args.tickets)
        await analysed(db)
        progress("reading")
        measured = await reads(db, rng, args.samples)
        progress(f"  {measured}")
        if args.explain:
            await explain_paths(db, rng.choice(QUEUES))
        return {
            "append_events_per_s": {"batched": round(batched), "one_per_transaction": round(single)},
            "replay_events_per_s": round(replayed),
            **measured,
        }
    finally:
        await db.close()


async def fresh_postgres(server: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    name = f"bench_tickets_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))

    async def drop() -> None:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    return make_url(server).set(database=name).render_as_string(hide_password=False), drop


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for database in args.databases.split(","):
        progress(f"{database}: {args.tickets:,} tickets")
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            if database == "sqlite":
                url, drop = f"sqlite+aiosqlite:///{Path(tmp) / 'tickets.db'}", None
            else:
                url, drop = await fresh_postgres(os.environ["HELPDESK_TEST_POSTGRES_URL"])
            try:
                results[database] = await one_database(url, args)
            finally:
                if drop:
                    await drop()
        progress(f"{database} done in {time.perf_counter() - started:,.0f} s")
    return results


def summary(args: argparse.Namespace, results: dict[str, Any]) -> dict[str, Any]:
    """The figures the issue asks for, by name, and each database's whole result."""
    return {
        "read_model_tickets": args.tickets,
        "read_model_filled_by": "bulk inserts of copies of 375 domain-folded tickets, one per fate x queue x priority",
        "append_events_per_s": {db: r["append_events_per_s"] for db, r in results.items()},
        "replay_events_per_s": {db: r["replay_events_per_s"] for db, r in results.items()},
        "get_ticket": {db: r["get_ticket"] for db, r in results.items()},
        "queue_head": {db: r["queue_head"] for db, r in results.items()},
        "append_events": args.append_events,
        "one_per_transaction_events": args.single_events,
        "batch": args.batch,
        "samples": args.samples,
        "load_average_after": [round(x, 1) for x in os.getloadavg()],  # a shared box: read the figures with this
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1_000_000, help="tickets in the read model when reading")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--append-events", type=int, default=20_000, help="events appended batched")
    parser.add_argument("--single-events", type=int, default=2_000, help="events appended one per transaction")
    parser.add_argument("--batch", type=int, default=500, help="events per batched transaction")
    parser.add_argument("--samples", type=int, default=2_000, help="calls timed per read path")
    parser.add_argument("--explain", action="store_true", help="print every statement's plan to stderr")
    args = parser.parse_args(argv)
    configure_logging("bench-tickets", "WARNING")
    logging.getLogger().handlers[0].setStream(sys.stderr)  # type: ignore[attr-defined]
    results = asyncio.run(bench(args))
    print(json.dumps(summary(args, results)))


if __name__ == "__main__":
    main()
