"""Micro-benchmark of the ticket service's hot paths, on SQLite and PostgreSQL.

    eval "$(scripts/infra env)"
    python -m bench.tickets_hotpaths [--tickets 5000] [--batch 500] [--rounds 3] [--databases sqlite,postgresql]

Per database and round, on a fresh database: the incidents handler opens
``--tickets`` tickets in consumer-sized batches; the commands handler routes
each ticket, then escalates each one (so it loads a three-event stream); the
relay publishes the whole log to a real broker (fresh topics), batch by batch,
as its worker does. Messages are built before the clock starts: what is timed
is what the service does with a decoded batch.

For each path it reports, of the best round, the rate (items per second of
wall time) and the process's CPU time per item in microseconds (all threads,
so aiosqlite's worker counts; the database server and the broker do not).
On a shared box the CPU figure is the steadier one; compare runs made in the
same quiet minutes, or better, alternate the two versions being compared.

Progress goes to stderr; the last line on stdout is JSON.

:func:`explain_paths` (run by ``python -m bench.tickets --explain``, on a big
read model) prints the plan of every statement these paths run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from contracts.commands import EscalateTicket, EscalateTicketData, RouteTicket, RouteTicketData
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import Channel, CustomerProfile, IncidentIdentified, IncidentIdentifiedData
from runtime.consumer import Delivery
from runtime.kafka import Publisher, make_broker
from runtime.logs import configure_logging
from runtime.settings import CommonSettings
from runtime.topics_admin import ensure_topics
from services.tickets.adapters.database import TicketDatabase
from services.tickets.handlers import apply_commands, open_tickets, ticket_id_for
from services.tickets.relay import Relay


def progress(message: str) -> None:
    print(f"[bench/tickets] {message}", file=sys.stderr, flush=True)


def incident(i: int) -> IncidentIdentified:
    data = IncidentIdentifiedData(
        channel=Channel.EMAIL,
        channel_message_id=f"bench-{uuid.uuid4().hex}-{i}",
        received_at=datetime.now(UTC),
        subject=f"VPN drops every hour ({i})",
        description="Since Monday the VPN drops every hour; reconnecting works for a while.",
        components=["vpn", "network"],
        impact="high",
        urgency="medium",
        customer=CustomerProfile(
            identified=True, identified_by="email", customer_id=f"c-{i % 500}", email=f"c{i % 500}@example.com"
        ),
    )
    return new_envelope(IncidentIdentified, data, correlation_id=f"contact-{i}")  # type: ignore[return-value]


def route(ticket_id: uuid.UUID, cause: Envelope[Any]) -> Envelope[Any]:
    data = RouteTicketData(
        priority=2,
        priority_rule="impact-high",
        priority_reason="high impact, medium urgency",
        queue="network",
        queue_rule="component-vpn",
        queue_reason="component vpn",
    )
    return new_envelope(RouteTicket, data, ticket_id=ticket_id, causation=cause)


def escalate(ticket_id: uuid.UUID, cause: Envelope[Any]) -> Envelope[Any]:
    data = EscalateTicketData(level=2, queue="level-2", reason="no claim in 15 min", deadline=datetime.now(UTC))
    return new_envelope(EscalateTicket, data, ticket_id=ticket_id, causation=cause)


def batches(messages: list[Envelope[Any]], size: int) -> list[list[Delivery[Any]]]:
    return [
        [Delivery(m, "bench", 0, start + i, None) for i, m in enumerate(messages[start : start + size])]
        for start in range(0, len(messages), size)
    ]


async def timed(work: Callable[[], Awaitable[int]]) -> tuple[int, float, float]:
    """(items, wall seconds, CPU seconds) of one run of ``work``."""
    wall, cpu = time.perf_counter(), time.process_time()
    items = await work()
    return items, time.perf_counter() - wall, time.process_time() - cpu


async def one_round(url: str, publisher: Publisher, tickets: int, batch: int) -> dict[str, tuple[int, float, float]]:
    db = TicketDatabase(url)
    await db.create_tables()
    try:
        incidents = [incident(i) for i in range(tickets)]
        routes = [route(ticket_id_for(m.data), m) for m in incidents]
        escalations = [escalate(c.ticket_id, c) for c in routes]  # type: ignore[arg-type]
        # The service holds one batch at a time; the collector should not keep rescanning the bench's prepared ones.
        gc.collect()
        gc.freeze()
        open_handler, command_handler = open_tickets(db, lambda: None), apply_commands(db, lambda: None)

        async def run(handler: Any, messages: list[Envelope[Any]]) -> int:
            for deliveries in batches(messages, batch):
                await handler(deliveries)
            return len(messages)

        async def relay_all() -> int:
            relay, position, total = Relay(db, publisher, batch_size=batch), 0, 0
            while True:
                published, position = await relay.relay_once(position)
                if not published:
                    return total
                total += published

        return {
            "open": await timed(lambda: run(open_handler, incidents)),
            "route": await timed(lambda: run(command_handler, routes)),
            "escalate": await timed(lambda: run(command_handler, escalations)),
            "relay": await timed(relay_all),
        }
    finally:
        gc.unfreeze()
        await db.close()


async def fresh_postgres(server: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))

    async def drop() -> None:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    return make_url(server).set(database=name).render_as_string(hide_password=False), drop


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix)
    common = CommonSettings(kafka_bootstrap_servers=bootstrap, kafka_topic_prefix=prefix)
    broker = make_broker("bench-tickets", common)
    await broker.start()
    results: dict[str, Any] = {}
    try:
        publisher = Publisher(broker, "bench-tickets", prefix)
        for database in args.databases.split(","):
            rounds = []
            for n in range(args.rounds):
                with tempfile.TemporaryDirectory() as tmp:
                    if database == "sqlite":
                        url, drop = f"sqlite+aiosqlite:///{Path(tmp) / 'tickets.db'}", None
                    else:
                        url, drop = await fresh_postgres(os.environ["HELPDESK_TEST_POSTGRES_URL"])
                    try:
                        rounds.append(await one_round(url, publisher, args.tickets, args.batch))
                    finally:
                        if drop:
                            await drop()
                rates = ", ".join(f"{path} {i / w:,.0f}/s" for path, (i, w, _) in rounds[-1].items())
                progress(f"{database} round {n + 1}: {rates}")
            results[database] = {
                path: {
                    "per_s": round(max(r[path][0] / r[path][1] for r in rounds)),
                    "cpu_us": round(min(r[path][2] / r[path][0] * 1e6 for r in rounds), 1),
                }
                for path in rounds[0]
            }
    finally:
        await broker.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    # As the service runs: its info lines cost what they cost there (sent to stderr, to keep stdout for the result).
    configure_logging("bench-tickets", "INFO")
    logging.getLogger().handlers[0].setStream(sys.stderr)  # type: ignore[attr-defined]
    results = asyncio.run(bench(args))
    print(json.dumps({"tickets": args.tickets, "batch": args.batch, "rounds": args.rounds, **results}))


if __name__ == "__main__":
    main()


# --- the plans of every statement on the hot paths (used by ``python -m bench.tickets --explain``) ---------


async def explain_paths(db: TicketDatabase, queue: str) -> None:
    """Run each path of the service once on ``db``, recording its statements, and print each one's plan.

    SQLite: ``EXPLAIN QUERY PLAN``. PostgreSQL: ``EXPLAIN ANALYZE`` for reads (in a
    transaction rolled back), plain ``EXPLAIN`` for writes (running them again
    would only hit their own keys). A line marked ``<-- scans`` reads a whole
    table or index: the thing to look for as the read model grows.
    """
    from services.tickets.adapters import event_store, read_model, repository
    from services.tickets.census import take_census
    from services.tickets.domain import Status

    recorded: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, executemany) -> None:  # type: ignore[no-untyped-def]
        recorded.append((statement, parameters[0] if executemany and parameters else parameters))

    engines = {db.writer.sync_engine, db.reader.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    incidents = [incident(i) for i in range(50)]
    routes = [route(ticket_id_for(m.data), m) for m in incidents]

    async def get_ticket() -> None:
        async with db.reader.connect() as conn:
            ticket_id = await repository.find(conn, "HD-1")
            await repository.load(conn, [ticket_id])  # type: ignore[list-item]

    async def lists() -> None:
        async with db.reader.connect() as conn:
            for query in (
                read_model.TicketQuery(),
                read_model.TicketQuery(status=Status.OPEN, queue=queue),
                read_model.TicketQuery(customer_id="c-42"),
                read_model.TicketQuery(text="vpn broken"),
                read_model.TicketQuery(text="printer -vpn"),
            ):
                await read_model.list_tickets(conn, query)

    async def queue_line() -> None:
        async with db.reader.connect() as conn:
            await read_model.queue_line(conn, queue, 50)
            await read_model.queues(conn)

    async def take_next() -> None:
        async with db.writer.connect() as conn:
            await read_model.take_head_of_line(conn, queue)
            await conn.rollback()

    async def relay_reads() -> None:
        async with db.reader.connect() as conn:
            position = await event_store.relay_position(conn, "ticket-events")
            await event_store.read_rows_after(conn, position, 500)
            await event_store.count_after(conn, position)
        async with db.writer.begin() as conn:
            await event_store.advance_relay_position(conn, "ticket-events", position)

    paths: dict[str, Callable[[], Awaitable[Any]]] = {
        "open tickets (incidents handler)": lambda: open_tickets(db, lambda: None)(batches(incidents, 50)[0]),
        "route tickets (commands handler)": lambda: apply_commands(db, lambda: None)(batches(routes, 50)[0]),
        "relay": relay_reads,
        "census": lambda: take_census(db),
        "get ticket": get_ticket,
        "list tickets": lists,
        "queue line and queues": queue_line,
        "take next": take_next,
    }
    try:
        for name, path in paths.items():
            recorded.clear()
            await path()
            statements = list(dict.fromkeys((s, p) for s, p in ((s, _hashable(p)) for s, p in recorded)))
            progress(f"== {name}")
            for statement, parameters in statements:
                await _explain(db, statement, parameters)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def _hashable(parameters: Any) -> Any:
    return tuple(parameters) if isinstance(parameters, list) else parameters


_SKIPPED = ("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "LOCK", "SAVEPOINT", "RELEASE", "SELECT 1", "SELECT pg_")


async def _explain(db: TicketDatabase, statement: str, parameters: Any) -> None:
    if statement.lstrip().upper().startswith(_SKIPPED):
        return
    if statement.lstrip().upper().startswith("INSERT"):
        progress(f"  {' '.join(statement.split())[:100]} ...   (an insert: probes its table's unique keys only)")
        return
    parameters = tuple(parameters) if isinstance(parameters, (list, tuple)) else parameters or ()
    one_line = " ".join(statement.split())
    reads = one_line.upper().startswith("SELECT")
    if db.is_postgres:
        prefix = "EXPLAIN (ANALYZE, COSTS OFF) " if reads else "EXPLAIN (COSTS OFF) "
    else:
        prefix = "EXPLAIN QUERY PLAN "
    async with db.reader.connect() as conn:
        plan = [row[-1] for row in (await conn.exec_driver_sql(prefix + statement, parameters)).all()]
        await conn.rollback()
    progress(f"  {one_line[:150]}{' ...' if len(one_line) > 150 else ''}")
    for line in plan:
        # (a SCAN under a LIMIT in index order stops early: a list's newest-first walk is one)
        scans = ("Seq Scan" in line) if db.is_postgres else line.startswith("SCAN")
        progress(f"      {line}{'   <-- scans' if scans else ''}")
