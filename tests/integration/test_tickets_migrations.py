"""The ticket database's Alembic migrations, and the read model's rebuild, on SQLite and PostgreSQL.

The first test keeps the next schema change honest: change a table in
``services/tickets/adapters`` without a revision and it fails, naming the difference.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, insert, inspect, select, text

from contracts.envelope import new_envelope
from contracts.incidents import Channel, CustomerProfile, IncidentIdentified, IncidentIdentifiedData
from services.tickets import migrate, migrations, rebuild_read_model
from services.tickets.adapters import event_store, repository
from services.tickets.adapters.database import TicketDatabase, tables
from services.tickets.adapters.event_store import relay_positions
from services.tickets.adapters.repository import Change
from services.tickets.domain import open_ticket
from services.tickets.migrations import baseline_schema


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[TicketDatabase]:
    database = TicketDatabase(database_url)
    yield database
    await database.close()


async def on(db: TicketDatabase, step):  # type: ignore[no-untyped-def]
    async with db.writer.begin() as conn:
        return await conn.run_sync(step)


def head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()  # type: ignore[return-value]


async def test_a_new_database_migrated_to_head_has_exactly_the_codes_tables(db: TicketDatabase) -> None:
    await db.migrate()
    assert await on(db, migrations.current) == head()
    assert await on(db, lambda conn: migrations.differences(conn, tables())) == []
    await db.migrate()  # a second start-up: nothing to do
    assert await on(db, migrations.current) == head()


def _created_before_migrations(conn: Connection) -> None:
    """A database as ``create_all`` made it before migrations existed, with three tickets in its read model."""
    baseline_schema.metadata.create_all(conn)
    tickets = baseline_schema.metadata.tables["tickets"]
    now = datetime.now(UTC)
    conn.execute(
        insert(tickets),
        [
            {
                "ticket_id": uuid.uuid4(),
                "number": f"HD-{n}",
                "version": 3,
                "status": status,
                "subject": "s",
                "description": "d",
                "channel": "web",
                "channel_message_id": f"m-{n}",
                "customer": {},
                "components": [],
                "priority": priority,
                "queue": queue,
                "level": 1,
                "opened_at": now,
                "updated_at": now,
                "flags": [],
                "search_text": "s",
            }
            for n, (status, priority, queue) in enumerate(
                [("open", 2, "network"), ("open", 2, "network"), ("in_progress", None, None)], start=1
            )
        ],
    )
    conn.execute(insert(relay_positions).values(name="ticket-events", position=41))


async def test_a_database_created_before_migrations_is_adopted_and_upgraded_with_its_rows(db: TicketDatabase) -> None:
    await on(db, _created_before_migrations)
    await db.migrate()
    assert await on(db, migrations.current) == head()
    assert await on(db, lambda conn: migrations.differences(conn, tables())) == []
    async with db.reader.connect() as conn:
        assert (await conn.execute(select(relay_positions.c.position))).scalar_one() == 41
        # The population is counted from the tickets already there (not left empty).
        counted = await conn.execute(
            text("SELECT status, priority, queue, tickets FROM ticket_population ORDER BY status")
        )
        assert [tuple(r) for r in counted] == [("in_progress", 0, "", 1), ("open", 2, "network", 2)]


async def test_a_database_whose_tables_differ_from_the_baseline_is_not_adopted(db: TicketDatabase) -> None:
    await on(db, baseline_schema.metadata.create_all)
    await on(db, lambda conn: conn.execute(text("ALTER TABLE tickets ADD COLUMN surprise TEXT")))
    with pytest.raises(migrations.SchemaMismatch, match="surprise"):
        await db.migrate()
    assert await on(db, migrations.current) is None
    assert "alembic_version" not in await on(db, lambda conn: inspect(conn).get_table_names())


async def test_tables_made_from_the_code_are_recorded_at_head(db: TicketDatabase) -> None:
    await db.create_tables()
    assert await on(db, migrations.current) == head()
    await db.migrate()  # nothing to do, nothing to collide with
    assert await on(db, lambda conn: migrations.differences(conn, tables())) == []


async def test_on_postgresql_replicas_starting_together_migrate_one_after_the_other(postgres_database: str) -> None:
    replicas = [TicketDatabase(postgres_database) for _ in range(3)]
    try:
        async with asyncio.timeout(60):  # without the lock they collide (duplicate tables, or wait on each other)
            await asyncio.gather(*(replica.migrate() for replica in replicas))
        assert await on(replicas[0], migrations.current) == head()
        assert await on(replicas[0], lambda conn: migrations.differences(conn, tables())) == []
    finally:
        for replica in replicas:
            await replica.close()


async def test_the_operator_command_upgrades_and_tells_where_the_database_is(
    sqlite_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TICKETS_DATABASE_URL", sqlite_database)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")

    async def run(*argv: str) -> tuple[int, str]:
        code = await asyncio.to_thread(migrate.main, list(argv))  # the command runs its own event loop
        return code, capsys.readouterr().out

    assert await run("current") == (0, "none (never migrated)\n")
    assert await run("upgrade") == (0, f"ticket database at {head()}\n")
    assert await run("current") == (0, f"{head()}\n")
    assert (await run("check"))[0] == 0
    code, history = await run("history")
    assert code == 0 and f"-> {migrations.BASELINE}" in history
    # A difference from the code's tables is reported, with exit status 1.
    db = TicketDatabase(sqlite_database)
    try:
        await on(db, lambda conn: conn.execute(text(f"ALTER TABLE tickets ADD COLUMN x_{uuid.uuid4().hex[:6]} TEXT")))
    finally:
        await db.close()
    code, report = await run("check")
    assert code == 1 and "remove_column" in report


# --- rebuilding the read model (the other command an operator runs on this database) -------------


async def _open_tickets(db: TicketDatabase, count: int) -> None:
    async with db.writer.begin() as conn:
        ids = [uuid.uuid4() for _ in range(count)]
        numbers = await event_store.allocate_numbers(conn, ids)
        changes = []
        for ticket_id in ids:
            data = IncidentIdentifiedData(
                channel=Channel.WEB,
                channel_message_id=str(ticket_id),
                received_at=datetime.now(UTC),
                subject="Printer on fire",
                customer=CustomerProfile(identified=False, email="ops@example.com"),
            )
            cause = new_envelope(IncidentIdentified, data, correlation_id=f"c-{ticket_id}")
            opened = repository.recorded(
                ticket_id, [open_ticket(numbers[ticket_id], data)], at=datetime.now(UTC), cause=cause
            )
            changes.append(Change.of(None, opened))
        await repository.save(conn, changes)


async def _read_model(db: TicketDatabase) -> tuple[list[Any], list[Any]]:
    async with db.reader.connect() as conn:
        rows = (await conn.execute(text("SELECT number, status, version FROM tickets ORDER BY number"))).all()
        counts = (await conn.execute(text("SELECT status, tickets FROM ticket_population ORDER BY status"))).all()
    return [tuple(r) for r in rows], [tuple(c) for c in counts]


@pytest.mark.parametrize("watcher", ["log", "terminal"])
async def test_the_rebuild_folds_the_read_model_again_and_reports_its_progress(
    db: TicketDatabase, watcher: str
) -> None:
    await db.create_tables()
    await _open_tickets(db, 1200)  # more than one flush
    before = await _read_model(db)
    await on(db, lambda conn: conn.execute(text("DELETE FROM tickets")))  # a read model gone wrong
    progress = (
        rebuild_read_model.ProgressLog(every_s=0) if watcher == "log" else rebuild_read_model.progress_for(Terminal())
    )
    assert isinstance(progress, rebuild_read_model.ProgressLog if watcher == "log" else rebuild_read_model.ProgressBar)
    assert await rebuild_read_model.rebuild(db, progress) == 1200
    assert await _read_model(db) == before
    if isinstance(progress, rebuild_read_model.ProgressLog):
        figures = progress.figures()
        assert (figures["events"], figures["events_total"], figures["tickets"], figures["percent"]) == (
            1200,
            1200,
            1200,
            100.0,
        )
        assert figures["events_per_s"] > 0 and figures["eta_s"] == 0


class Terminal:
    """Where a person watches: a progress bar, not log lines."""

    def isatty(self) -> bool:
        return True
