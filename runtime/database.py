"""SQLAlchemy engines: SQLite as the embedded default, PostgreSQL for deployments.

Each service owns its database; this module only knows how to open one well.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, TypeDecorator, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def make_engine(url: str, *, pool_size: int = 10, writer: bool = True) -> AsyncEngine:
    """Open ``url`` (``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``).

    On SQLite a ``writer`` engine takes the write lock when a transaction
    begins; a reader engine (``writer=False``) reads a WAL snapshot and never
    waits for the writer.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A writer engine keeps ONE connection: its transactions then queue in the pool, in order,
        # and the next starts the moment the last returns its connection. With several connections
        # they queued in SQLite's busy handler instead, which sleeps 1, 2, 5 ... up to 100 ms between
        # looks at the lock (the ticket service's three consumers and relay met there at every hop).
        # A reader keeps several (WAL snapshots never wait for the writer). Both waits end after 30 s.
        one_writer = writer and parsed.database not in (None, "", ":memory:")
        pool = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 30} if one_writer else {}
        engine = create_async_engine(url, connect_args={"timeout": 30}, **pool)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # pysqlite's own transaction handling is off; we issue BEGIN ourselves below.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the one writer; NORMAL sync is durable in WAL mode
            # against a process crash (the case we guard); FULL also survives power loss.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn) -> None:  # type: ignore[no-untyped-def]
            # A writer takes the write lock at BEGIN: two writers then queue
            # instead of one failing half-way with "database is locked".
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


async def ping(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return True


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and read back timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite keeps text: without the offset, values compare in one format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def dialect_insert(backend: str) -> Any:
    """The ``insert`` construct that knows ``ON CONFLICT`` on this database ('sqlite' or 'postgresql')."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if backend == "postgresql" else sqlite.insert
