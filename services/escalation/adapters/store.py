"""The deadlines store (SQLAlchemy Core; SQLite or PostgreSQL).

``escalation_sla_clocks`` holds one row per ticket: its three SLA clocks,
level, warnings and breaches; the timer scans it by ``next_at``, the earliest
warning or breach not yet sent (NULL: nothing to watch).
``escalation_processed_events`` records every ticket event applied, written in
the same transaction as the deadline change, so a redelivered event is a
no-op; rows older than the retention (far beyond any redelivery) are pruned.
The consumer works a batch at a time: one look-up of the batch's event ids,
one of its tickets' deadlines, then one upsert and one insert.
The timer reads due deadlines through a reader engine (on SQLite it never
waits for the consumer's write lock) and stores what it is about to send
BEFORE sending it: the deadlines with their warnings and breaches counted,
with a compare-and-set on the row's revision (a deadline the consumer moved
meanwhile is left alone, and nothing is sent for it), and, in the same
transaction, the messages in ``escalation_outbox``. Once Kafka has them, their
outbox rows are deleted; rows left by a crash are sent again, same ids.

The SLA figures (``GET /v1/sla/metrics``) are counted from two tables, so
every replica answers the same and a restart loses nothing:
``escalation_sla_measures`` holds each time to first response and to
resolution, written in the consumer's transaction and keyed by the event
that completed it; ``escalation_sla_breaches`` each target breached, written
in the timer's transaction and keyed by the ticket, target and run of its
clock. A redelivered event, a replay (rebuild) or two replicas deciding the
same breach add nothing. Both are tables of their own: ``create_all`` adds
them to a database from before (it adds no columns to existing tables).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
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
    Text,
    Uuid,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.registry import parse_message
from contracts.topics import ALL_TOPICS
from runtime.database import UtcDateTime, dialect_insert, make_engine, ping
from runtime.kafka import Outgoing
from services.escalation.domain.breaches import Breach
from services.escalation.domain.deadline import OPEN_STATES, Deadline, DeadlineState
from services.escalation.domain.ticket_events import Measure

metadata = MetaData()

deadlines = Table(
    # Renamed with each set of new columns (create_all adds no columns): a database from before keeps its
    # old unused table ("deadlines", "escalation_clocks"); see docs/escalation.md, "Upgrading".
    "escalation_sla_clocks",
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
    Column("next_at", UtcDateTime, nullable=True),  # the earliest warning or breach to send: what the timer scans
    Column("opened_at", UtcDateTime, nullable=True),
    Column("paused_at", UtcDateTime, nullable=True),
    Column("paused_total_s", Float, nullable=False),
    Column("unanswered", Integer, nullable=False),
    Column("reopened", Integer, nullable=False),
    Column("paused_business_s", Float, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("responded_at", UtcDateTime, nullable=True),
    Column("update_run", Integer, nullable=False),
    Column("update_since", UtcDateTime, nullable=True),
    Column("update_used_s", Float, nullable=False),
    Column("update_warned", Integer, nullable=False),
    Column("update_breached", Boolean, nullable=False),
    Column("update_due_at", UtcDateTime, nullable=True),
    Column("update_warn_at", UtcDateTime, nullable=True),
    Column("resolution_warned", Integer, nullable=False),
    Column("resolution_breached", Boolean, nullable=False),
    Column("resolution_due_at", UtcDateTime, nullable=True),
    Column("resolution_warn_at", UtcDateTime, nullable=True),
    Column("escalated_to", Integer, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_escalation_sla_clocks_next_at", "next_at"),
    Index("ix_escalation_sla_clocks_state", "state"),  # the open-timers gauge counts pending rows every pass
)

processed_events = Table(
    "escalation_processed_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("processed_at", UtcDateTime, nullable=False),
    Index("ix_escalation_processed_events_processed_at", "processed_at"),
)

outbox = Table(
    # What the timer decided to send, stored with the decision and deleted once Kafka acknowledged it.
    "escalation_outbox",
    metadata,
    Column("message_id", Uuid, primary_key=True),
    Column("ticket_id", Uuid, nullable=False),
    Column("topic", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("value", Text, nullable=False),  # the message as JSON
    Column("stored_at", UtcDateTime, nullable=False),
    Column("position", Integer, nullable=False),  # the order within the pass: a ticket's messages in order
    Index("ix_escalation_outbox_stored_at", "stored_at", "position"),
)

sla_measures = Table(
    "escalation_sla_measures",
    metadata,
    Column("measure_id", Uuid, primary_key=True),
    Column("ticket_id", Uuid, nullable=False),
    Column("kind", String(20), nullable=False),  # first_response | resolution
    Column("priority", Integer, nullable=False),
    Column("queue", String(100), nullable=False),
    Column("seconds", Float, nullable=False),
    Column("measured_at", UtcDateTime, nullable=False),  # when the completing event happened
)

sla_breaches = Table(
    "escalation_sla_breaches",
    metadata,
    Column("breach_id", Uuid, primary_key=True),
    Column("ticket_id", Uuid, nullable=False),
    Column("target", String(20), nullable=False),  # first_response | next_update | resolution
    Column("priority", Integer, nullable=False),
    Column("queue", String(100), nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

_TOPICS = {topic.name: topic for topic in ALL_TOPICS}

_CLOCK_FIELDS = (
    "resolved_at", "responded_at", "update_run", "update_since", "update_used_s", "update_warned", "update_breached",
    "update_due_at", "update_warn_at", "resolution_warned", "resolution_breached", "resolution_due_at",
    "resolution_warn_at", "escalated_to", "revision",
)
"""Columns read into the Deadline field of the same name, as they are."""


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
        **{name: getattr(row, name) for name in _CLOCK_FIELDS},
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
        **{name: getattr(deadline, name) for name in _CLOCK_FIELDS},
        "revision": deadline.revision + 1,
        "updated_at": now,
    }


@dataclass(frozen=True)
class SlaFigures:
    """The SLA figures as stored: (kind, priority, queue, count, mean seconds) and (priority, queue, target, count)."""

    timings: list[tuple[str, int, str, int, float]]
    breaches: list[tuple[int, str, str, int]]


class Changes:
    """One transaction of the consumer, set-based: a few statements per batch of events, not per event."""

    def __init__(self, conn: AsyncConnection, upsert: Any, insert_measures: Any) -> None:
        self._conn = conn
        self._upsert = upsert
        self._insert_measures = insert_measures

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

    async def mark_processed(self, event_ids: Iterable[uuid.UUID], now: datetime) -> None:
        # A plain insert: were another consumer (a rebalance's zombie) applying the same
        # event at the same time, one of the two transactions fails and is retried.
        rows = [{"event_id": event_id, "processed_at": now} for event_id in event_ids]
        if rows:
            await self._conn.execute(insert(processed_events), rows)

    async def record_measures(self, measures: Iterable[Measure]) -> None:
        """The times the batch's events completed, for the SLA figures (one measured before is kept as it is)."""
        rows = [
            {"measure_id": m.measure_id, "ticket_id": m.ticket_id, "kind": m.kind, "priority": m.priority,
             "queue": m.queue, "seconds": m.seconds, "measured_at": m.at}
            for m in measures
        ]
        if rows:
            await self._conn.execute(self._insert_measures, rows)


def _outbox_rows(messages: Sequence[Outgoing], now: datetime) -> list[dict[str, Any]]:
    return [
        {"message_id": m.message.event_id, "ticket_id": m.message.ticket_id, "topic": m.topic.name, "key": m.key,
         "value": m.message.model_dump_json(), "stored_at": now, "position": position}
        for position, m in enumerate(messages)
    ]


def _breach_rows(breaches: Sequence[Breach], now: datetime) -> list[dict[str, Any]]:
    return [
        {"breach_id": b.breach_id, "ticket_id": b.ticket_id, "target": b.target.value, "priority": b.priority,
         "queue": b.queue, "due_at": b.due_at, "recorded_at": now}
        for b in breaches
    ]


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
        # A message stored twice (two replicas deciding the same thing) is one message.
        self._outbox_insert = dialect_insert(backend)(outbox).on_conflict_do_nothing(index_elements=["message_id"])
        # Likewise a measure or a breach: what was counted once is not counted again.
        self._measures_insert = (
            dialect_insert(backend)(sla_measures).on_conflict_do_nothing(index_elements=["measure_id"])
        )
        self._breaches_insert = (
            dialect_insert(backend)(sla_breaches).on_conflict_do_nothing(index_elements=["breach_id"])
        )
        self._settle = (
            update(deadlines)
            .where(deadlines.c.ticket_id == bindparam("b_ticket_id"), deadlines.c.revision == bindparam("b_revision"))
            .values({c.name: bindparam(c.name) for c in deadlines.c if not c.primary_key})
        )

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
            yield Changes(conn, self._upsert, self._measures_insert)

    async def due(self, now: datetime, limit: int) -> list[Deadline]:
        """The tickets with a warning or breach to send by ``now``, the most overdue first."""
        query = select(deadlines).where(deadlines.c.next_at <= now).order_by(deadlines.c.next_at).limit(limit)
        async with self.reader.connect() as conn:
            return [_deadline(row) for row in await conn.execute(query)]

    async def settle(
        self,
        decided: Sequence[tuple[Deadline, Deadline]],
        now: datetime,
        messages: Mapping[uuid.UUID, Sequence[Outgoing]] | None = None,
        breaches: Mapping[uuid.UUID, Sequence[Breach]] | None = None,
    ) -> set[uuid.UUID]:
        """Store each (before, after) the timer decided, with the ticket's ``messages`` in the outbox and its
        ``breaches`` counted, unless the consumer changed the row meanwhile; the tickets stored.

        A row the consumer changed keeps the consumer's version and gets no outbox rows and no breaches:
        nothing is sent or counted for it, and the next pass decides again from what the consumer stored.
        """
        if not decided:
            return set()
        ordered = sorted(decided, key=lambda pair: pair[0].ticket_id)
        read = {before.ticket_id: before.revision for before, _ in ordered}
        async with self.writer.begin() as conn:
            # Locked in ticket order, the order the consumer locks in, so the two never deadlock (SQLite: the
            # writer's BEGIN IMMEDIATE already holds the write lock).
            query = (
                select(deadlines.c.ticket_id, deadlines.c.revision)
                .where(deadlines.c.ticket_id.in_(list(read)))
                .order_by(deadlines.c.ticket_id)
                .with_for_update()
            )
            unchanged = {row.ticket_id for row in await conn.execute(query) if row.revision == read[row.ticket_id]}
            rows = [
                {**_values(replace(after, revision=before.revision), now),  # written as revision + 1
                 "b_ticket_id": before.ticket_id, "b_revision": before.revision}
                for before, after in ordered
                if before.ticket_id in unchanged
            ]
            if rows:  # one statement for the batch (executemany): per-row ones were most of a pass's time
                await conn.execute(self._settle, rows)
            kept = _outbox_rows([m for t in sorted(unchanged) for m in (messages or {}).get(t, ())], now)
            if kept:
                await conn.execute(self._outbox_insert, kept)
            counted = _breach_rows([b for t in sorted(unchanged) for b in (breaches or {}).get(t, ())], now)
            if counted:
                await conn.execute(self._breaches_insert, counted)
        return unchanged

    async def sla_figures(self) -> SlaFigures:
        """Counts and means of the stored times, and counts of the breaches, by priority and queue."""
        timings = (
            select(sla_measures.c.kind, sla_measures.c.priority, sla_measures.c.queue, func.count(),
                   func.avg(sla_measures.c.seconds))
            .group_by(sla_measures.c.kind, sla_measures.c.priority, sla_measures.c.queue)
            .order_by(sla_measures.c.kind, sla_measures.c.priority, sla_measures.c.queue)
        )
        breached = (
            select(sla_breaches.c.priority, sla_breaches.c.queue, sla_breaches.c.target, func.count())
            .group_by(sla_breaches.c.priority, sla_breaches.c.queue, sla_breaches.c.target)
            .order_by(sla_breaches.c.priority, sla_breaches.c.queue, sla_breaches.c.target)
        )
        async with self.reader.connect() as conn:
            return SlaFigures(
                timings=[(k, p, q, int(n), float(mean)) for k, p, q, n, mean in await conn.execute(timings)],
                breaches=[(p, q, t, int(n)) for p, q, t, n in await conn.execute(breached)],
            )

    async def sent(self, message_ids: Collection[uuid.UUID]) -> None:
        """Kafka acknowledged these: their outbox rows go."""
        if message_ids:
            async with self.writer.begin() as conn:
                await conn.execute(delete(outbox).where(outbox.c.message_id.in_(list(message_ids))))

    async def unsent(self, stored_before: datetime | None = None, limit: int = 5_000) -> list[Outgoing]:
        """Messages stored in the outbox (before ``stored_before``, if given) and not yet acknowledged, in order."""
        query = select(outbox).order_by(outbox.c.stored_at, outbox.c.position).limit(limit)
        if stored_before is not None:
            query = query.where(outbox.c.stored_at < stored_before)
        async with self.reader.connect() as conn:
            return [
                Outgoing(_TOPICS[row.topic], parse_message(row.value), row.key) for row in await conn.execute(query)
            ]

    async def clear(self) -> None:
        """Forget every clock and every applied event id (a rebuild from the log); the outbox is kept, and so
        are the SLA measures and breaches (the replay finds them stored already: nothing is counted twice)."""
        async with self.writer.begin() as conn:
            await conn.execute(delete(deadlines))
            await conn.execute(delete(processed_events))

    async def prune_processed(self, before: datetime, chunk: int = 5_000) -> int:
        """Forget the event ids applied before ``before``, a chunk per transaction; the count forgotten."""
        forgotten = 0
        while True:
            oldest = select(processed_events.c.event_id).where(processed_events.c.processed_at < before).limit(chunk)
            async with self.writer.begin() as conn:
                result = await conn.execute(delete(processed_events).where(processed_events.c.event_id.in_(oldest)))
            forgotten += result.rowcount
            if result.rowcount < chunk:
                return forgotten

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
