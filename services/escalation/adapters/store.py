"""The deadlines store (SQLAlchemy Core; SQLite or PostgreSQL).

``escalation_clocks`` holds one row per ticket: its current deadline, state,
SLA clock and warnings; the timer scans it by ``(state, next_at)``, the earlier
of the next warning and the breach.
``processed_events`` records every ticket event applied, written in the same
transaction as the deadline change, so a redelivered event is a no-op. The
consumer works a batch at a time: one look-up of the batch's event ids, one of
its tickets' deadlines, then one upsert and one insert.
The timer reads due deadlines through a reader engine (on SQLite it never
waits for the consumer's write lock) and marks them fired with a
compare-and-set, so a deadline the consumer moved meanwhile is left alone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    and_,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.database import UtcDateTime, dialect_insert, make_engine, ping
from services.escalation.domain import OPEN_STATES, Deadline, DeadlineState

metadata = MetaData()

deadlines = Table(
    # Named escalation_clocks since it grew the SLA columns: a database from before keeps an unused "deadlines".
    "escalation_clocks",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("number", String(40), nullable=False),
    Column("level", Integer, nullable=False),
    Column("queue", String(100), nullable=True),
    Column("due_at", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("correlation_id", String(200), nullable=True),
    Column("priority", Integer, nullable=False),
    Column("customer_id", String(200), nullable=True),
    Column("vip", Boolean, nullable=False),
    Column("components", String(2000), nullable=False),  # newline-separated
    Column("running_since", UtcDateTime, nullable=True),
    Column("consumed_s", Float, nullable=False),
    Column("policy", String(60), nullable=True),
    Column("warned", Integer, nullable=False),
    Column("warn_at", UtcDateTime, nullable=True),
    Column("next_at", UtcDateTime, nullable=False),  # the earlier of warn_at and due_at: what the timer scans
    Column("opened_at", UtcDateTime, nullable=True),
    Column("paused_at", UtcDateTime, nullable=True),
    Column("paused_total_s", Float, nullable=False),
    Column("unanswered", Integer, nullable=False),
    Column("reopened", Integer, nullable=False),
    Column("paused_business_s", Float, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_escalation_clocks_state_next_at", "state", "next_at"),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
)


def _deadline(row: Any) -> Deadline:
    return Deadline(
        ticket_id=row.ticket_id,
        number=row.number,
        level=row.level,
        queue=row.queue,
        due_at=row.due_at,
        state=DeadlineState(row.state),
        correlation_id=row.correlation_id,
        priority=row.priority,
        customer_id=row.customer_id,
        vip=row.vip,
        components=tuple(c for c in row.components.split("\n") if c),
        running_since=row.running_since,
        consumed_s=row.consumed_s,
        policy=row.policy,
        warned=row.warned,
        warn_at=row.warn_at,
        opened_at=row.opened_at,
        paused_at=row.paused_at,
        paused_total_s=row.paused_total_s,
        unanswered=row.unanswered,
        reopened=row.reopened,
        paused_business_s=row.paused_business_s,
        resolved_at=row.resolved_at,
    )


def _values(deadline: Deadline, now: datetime) -> dict[str, Any]:
    return {
        "ticket_id": deadline.ticket_id,
        "number": deadline.number,
        "level": deadline.level,
        "queue": deadline.queue,
        "due_at": deadline.due_at,
        "state": deadline.state.value,
        "correlation_id": deadline.correlation_id,
        "priority": deadline.priority,
        "customer_id": deadline.customer_id,
        "vip": deadline.vip,
        "components": "\n".join(deadline.components),
        "running_since": deadline.running_since,
        "consumed_s": deadline.consumed_s,
        "policy": deadline.policy,
        "warned": deadline.warned,
        "warn_at": deadline.warn_at,
        "next_at": deadline.next_at,
        "opened_at": deadline.opened_at,
        "paused_at": deadline.paused_at,
        "paused_total_s": deadline.paused_total_s,
        "unanswered": deadline.unanswered,
        "reopened": deadline.reopened,
        "paused_business_s": deadline.paused_business_s,
        "resolved_at": deadline.resolved_at,
        "updated_at": now,
    }


class Changes:
    """One transaction of the consumer, set-based: a few statements per batch of events, not per event."""

    def __init__(self, conn: AsyncConnection, upsert: Any) -> None:
        self._conn = conn
        self._upsert = upsert

    async def seen(self, event_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Those of ``event_ids`` already applied."""
        query = select(processed_events.c.event_id).where(processed_events.c.event_id.in_(list(event_ids)))
        return set((await self._conn.execute(query)).scalars())

    async def deadlines(self, ticket_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Deadline]:
        """The stored deadline of each of these tickets that has one, locked until the transaction ends."""
        # FOR UPDATE on PostgreSQL: the timer's "fired" cannot slip in between this read and our write.
        # Locked in ticket order, the order the timer marks in, so the two never deadlock.
        query = (
            select(deadlines)
            .where(deadlines.c.ticket_id.in_(list(ticket_ids)))
            .order_by(deadlines.c.ticket_id)
            .with_for_update()
        )
        return {row.ticket_id: _deadline(row) for row in await self._conn.execute(query)}

    async def save(self, changed: Iterable[Deadline], now: datetime) -> None:
        rows = [_values(deadline, now) for deadline in changed]
        if rows:
            await self._conn.execute(self._upsert, rows)

    async def mark_processed(self, event_ids: Iterable[uuid.UUID]) -> None:
        # A plain insert: were another consumer (a rebalance's zombie) applying the same
        # event at the same time, one of the two transactions fails and is retried.
        rows = [{"event_id": event_id} for event_id in event_ids]
        if rows:
            await self._conn.execute(insert(processed_events), rows)


def _upsert(backend: str) -> Any:
    """``INSERT ... ON CONFLICT (ticket_id) DO UPDATE``: one statement for new and known tickets alike."""
    insert_on_conflict = dialect_insert(backend)
    statement = insert_on_conflict(deadlines)
    changes = {c.name: statement.excluded[c.name] for c in deadlines.c if not c.primary_key}
    return statement.on_conflict_do_update(index_elements=[deadlines.c.ticket_id], set_=changes)


class DeadlineStore:
    def __init__(self, url: str) -> None:
        self.writer = make_engine(url, writer=True)
        backend = make_url(url).get_backend_name()
        self.reader = make_engine(url, writer=False) if backend == "sqlite" else self.writer
        self._upsert = _upsert(backend)

    async def create_schema(self) -> None:
        async with self.writer.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()

    async def ready(self) -> bool:
        return await ping(self.reader)

    @asynccontextmanager
    async def changes(self) -> AsyncIterator[Changes]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        async with self.writer.begin() as conn:
            yield Changes(conn, self._upsert)

    async def due(self, now: datetime, limit: int) -> list[Deadline]:
        query = (
            select(deadlines)
            .where(deadlines.c.state == DeadlineState.PENDING.value, deadlines.c.next_at <= now)
            .order_by(deadlines.c.next_at)
            .limit(limit)
        )
        async with self.reader.connect() as conn:
            return [_deadline(row) for row in await conn.execute(query)]

    async def mark(self, pending: Sequence[Deadline], state: DeadlineState, now: datetime) -> int:
        """Move ``pending`` deadlines to ``state``, unless the consumer changed them meanwhile; the count moved."""
        marked = 0
        async with self.writer.begin() as conn:
            # In ticket order, the order the consumer locks in, so the two never deadlock.
            for deadline in sorted(pending, key=lambda d: d.ticket_id):
                result = await conn.execute(
                    update(deadlines)
                    .where(
                        and_(
                            deadlines.c.ticket_id == deadline.ticket_id,
                            deadlines.c.level == deadline.level,
                            deadlines.c.state == DeadlineState.PENDING.value,
                        )
                    )
                    .values(state=state.value, updated_at=now)
                )
                marked += result.rowcount
        return marked

    async def record_warnings(self, warned: Sequence[tuple[Deadline, Deadline]], now: datetime) -> int:
        """Count each (before, after) warning as sent, unless the consumer moved the deadline meanwhile."""
        recorded = 0
        async with self.writer.begin() as conn:
            for before, after in sorted(warned, key=lambda pair: pair[0].ticket_id):
                result = await conn.execute(
                    update(deadlines)
                    .where(
                        and_(
                            deadlines.c.ticket_id == before.ticket_id,
                            deadlines.c.level == before.level,
                            deadlines.c.state == DeadlineState.PENDING.value,
                            deadlines.c.warned == before.warned,
                        )
                    )
                    .values(warned=after.warned, warn_at=after.warn_at, next_at=after.next_at, updated_at=now)
                )
                recorded += result.rowcount
        return recorded

    async def pending_count(self) -> int:
        query = select(func.count()).select_from(deadlines).where(deadlines.c.state == DeadlineState.PENDING.value)
        async with self.reader.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def clock_of(self, ticket_id: uuid.UUID) -> Deadline | None:
        """The ticket's row whatever its state (met and breached deadlines are shown too)."""
        async with self.reader.connect() as conn:
            row = (await conn.execute(select(deadlines).where(deadlines.c.ticket_id == ticket_id))).first()
        return _deadline(row) if row is not None else None

    async def of_ticket(self, ticket_id: uuid.UUID) -> list[Deadline]:
        query = select(deadlines).where(
            deadlines.c.ticket_id == ticket_id,
            deadlines.c.state.in_([s.value for s in OPEN_STATES]),
        )
        async with self.reader.connect() as conn:
            return [_deadline(row) for row in await conn.execute(query)]
