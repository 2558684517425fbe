"""The ticket service's database: one schema, a writer and a reader engine.

On SQLite the writer engine takes the write lock at BEGIN (writers queue, the
whole write transaction is serialised) and the reader engine reads a WAL
snapshot beside it. PostgreSQL needs no such split: one engine serves both.

The schema comes from the Alembic revisions in ``services/tickets/migrations``:
the service runs :meth:`TicketDatabase.migrate` at start-up.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.database import make_engine, ping

metadata = MetaData()


def tables() -> MetaData:
    """The metadata with every table of the service on it (what migrations are compared with)."""
    # Importing the table modules registers their tables on ``metadata``.
    from services.tickets.adapters import deadlines, event_store, read_model  # noqa: F401

    return metadata


class TicketDatabase:
    def __init__(self, url: str) -> None:
        self.url = url
        self.writer: AsyncEngine = make_engine(url, writer=True)
        sqlite = make_url(url).get_backend_name() == "sqlite"
        self.reader: AsyncEngine = make_engine(url, writer=False) if sqlite else self.writer

    @property
    def is_postgres(self) -> bool:
        return self.writer.dialect.name == "postgresql"

    async def migrate(self) -> None:
        """Upgrade the schema to the newest revision (one replica at a time; see the migrations package)."""
        from services.tickets import migrations  # Alembic is only loaded by what migrates

        async with self.writer.begin() as conn:
            await conn.run_sync(migrations.upgrade)

    async def create_tables(self) -> None:
        """The code's tables in one step, recorded as at the newest revision: for tests and benchmarks.

        The code's tables are what the newest revision makes (a test holds the two
        together), so a service started on this database later has nothing to do.
        """
        from services.tickets import migrations

        async with self.writer.begin() as conn:
            await conn.run_sync(tables().create_all)
            await conn.run_sync(migrations.stamp_head)

    async def ping(self) -> bool:
        return await ping(self.reader)

    async def close(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()
