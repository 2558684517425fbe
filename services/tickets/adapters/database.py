"""The ticket service's database: one schema, a writer and a reader engine.

On SQLite the writer engine takes the write lock at BEGIN (writers queue, the
whole write transaction is serialised) and the reader engine reads a WAL
snapshot beside it. PostgreSQL needs no such split: one engine serves both.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.database import make_engine, ping

metadata = MetaData()


class TicketDatabase:
    def __init__(self, url: str) -> None:
        self.url = url
        self.writer: AsyncEngine = make_engine(url, writer=True)
        sqlite = make_url(url).get_backend_name() == "sqlite"
        self.reader: AsyncEngine = make_engine(url, writer=False) if sqlite else self.writer

    @property
    def is_postgres(self) -> bool:
        return self.writer.dialect.name == "postgresql"

    async def create_tables(self) -> None:
        # Importing the table modules registers their tables on ``metadata``.
        from services.tickets.adapters import deadlines, event_store, read_model  # noqa: F401

        async with self.writer.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def ping(self) -> bool:
        return await ping(self.reader)

    async def close(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()
