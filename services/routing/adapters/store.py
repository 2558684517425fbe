"""Routing's own store (SQLAlchemy Core; SQLite by default, PostgreSQL in deployments).

* ``routing_tickets``: what routing knows of each ticket (its facts, priority
  and queue and who set them, who holds it, open or not); agents' loads are
  counted from it.
* ``routing_decisions``: every decision, with the rules that matched in order
  and why: the explanation API reads it.
* ``routing_agents``: agents, their skills, languages, level, queues, availability.
* ``routing_cursors``: each round-robin queue's last pick.
* ``routing_awaited_assignments``: the tickets routing gave to an agent whose
  ``ticket.assigned`` has not come back yet (a table of its own, so that
  ``create_all`` adds it to a database from before: it adds no columns).
* ``routing_processed_events``: ticket events applied, written in the same
  transaction as their effect, so a redelivered event changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.database import UtcDateTime, dialect_insert, make_engine, ping
from services.routing.assignment import Agent
from services.routing.desk import Explanation, TicketView
from services.routing.domain import TicketFacts

metadata = MetaData()

tickets = Table(
    "routing_tickets",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("number", String(40), nullable=False),
    Column("facts", JSON, nullable=True),
    Column("priority", Integer, nullable=True),
    Column("priority_by", String(200), nullable=False),
    Column("priority_note", String(2000), nullable=False),
    Column("queue", String(100), nullable=True),
    Column("queue_by", String(200), nullable=False),
    Column("skills", JSON, nullable=False),
    Column("holder", String(200), nullable=True),
    Column("claimed", Boolean, nullable=False),
    Column("open", Boolean, nullable=False),
    Column("level", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_routing_tickets_holder_open", "holder", "open"),
)

decisions = Table(
    "routing_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Uuid, nullable=False, index=True),
    Column("cause_event_id", Uuid, nullable=False, unique=True),
    Column("at", UtcDateTime, nullable=False),
    Column("body", JSON, nullable=False),
)

agents = Table(
    "routing_agents",
    metadata,
    Column("agent_id", String(200), primary_key=True),
    Column("skills", JSON, nullable=False),
    Column("languages", JSON, nullable=False),
    Column("level", Integer, nullable=False),
    Column("queues", JSON, nullable=False),
    Column("available", Boolean, nullable=False),
)

cursors = Table(
    "routing_cursors",
    metadata,
    Column("queue", String(100), primary_key=True),
    Column("last_agent_id", String(200), nullable=False),
)

awaited_assignments = Table(
    "routing_awaited_assignments",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("agent_id", String(200), nullable=False),
)

processed_events = Table("routing_processed_events", metadata, Column("event_id", Uuid, primary_key=True))


def _facts_json(facts: TicketFacts | None) -> dict[str, Any] | None:
    if facts is None:
        return None
    out = asdict(facts)
    out["components"] = list(facts.components)
    out["reported_at"] = facts.reported_at.isoformat() if facts.reported_at else None
    return out


def _facts(raw: dict[str, Any] | None) -> TicketFacts | None:
    if raw is None:
        return None
    reported = datetime.fromisoformat(raw["reported_at"]) if raw.get("reported_at") else None
    return TicketFacts(**{**raw, "components": tuple(raw["components"]), "reported_at": reported})


def _view(row: Any, awaiting: bool = False) -> TicketView:
    return TicketView(
        ticket_id=row.ticket_id,
        number=row.number,
        facts=_facts(row.facts),
        priority=row.priority,
        priority_by=row.priority_by,
        priority_note=row.priority_note,
        queue=row.queue,
        queue_by=row.queue_by,
        skills=frozenset(row.skills),
        holder=row.holder,
        claimed=row.claimed,
        open=row.open,
        level=row.level,
        awaiting_assignment=awaiting,
    )


def _view_row(view: TicketView, now: datetime) -> dict[str, Any]:
    return {
        "ticket_id": view.ticket_id,
        "number": view.number,
        "facts": _facts_json(view.facts),
        "priority": view.priority,
        "priority_by": view.priority_by,
        "priority_note": view.priority_note[:2000],
        "queue": view.queue,
        "queue_by": view.queue_by,
        "skills": sorted(view.skills),
        "holder": view.holder,
        "claimed": view.claimed,
        "open": view.open,
        "level": view.level,
        "updated_at": now,
    }


def _agent(row: Any) -> Agent:
    return Agent(
        agent_id=row.agent_id,
        skills=frozenset(row.skills),
        languages=frozenset(row.languages),
        level=row.level,
        queues=frozenset(row.queues),
        available=row.available,
    )


def agent_row(agent: Agent) -> dict[str, Any]:
    return {
        "agent_id": agent.agent_id,
        "skills": sorted(agent.skills),
        "languages": sorted(agent.languages),
        "level": agent.level,
        "queues": sorted(agent.queues),
        "available": agent.available,
    }


def _upsert(backend: str, table: Table, key: str, keep: Collection[str] = ()) -> Any:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` of every column but ``keep``."""
    insert_on_conflict = dialect_insert(backend)
    statement = insert_on_conflict(table)
    changes = {c.name: statement.excluded[c.name] for c in table.c if c.name != key and c.name not in keep}
    return statement.on_conflict_do_update(index_elements=[table.c[key]], set_=changes)


class Changes:
    """One transaction of the consumer: a few statements per batch, not per event."""

    def __init__(self, conn: AsyncConnection, store: RoutingStore) -> None:
        self._conn = conn
        self._store = store
        self._awaited: set[uuid.UUID] = set()  # of the views read, those awaiting their ticket.assigned

    async def seen(self, event_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        query = select(processed_events.c.event_id).where(processed_events.c.event_id.in_(list(event_ids)))
        return set((await self._conn.execute(query)).scalars())

    async def views(self, ticket_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TicketView]:
        query = (
            select(tickets, awaited_assignments.c.agent_id.label("awaited_agent"))
            .outerjoin(awaited_assignments, awaited_assignments.c.ticket_id == tickets.c.ticket_id)
            .where(tickets.c.ticket_id.in_(list(ticket_ids)))
            .with_for_update(of=tickets)
        )
        views = {}
        for row in await self._conn.execute(query):
            awaiting = row.awaited_agent is not None and row.awaited_agent == row.holder
            views[row.ticket_id] = _view(row, awaiting)
            if row.awaited_agent is not None:
                self._awaited.add(row.ticket_id)
        return views

    async def agents(self) -> dict[str, Agent]:
        return {row.agent_id: _agent(row) for row in await self._conn.execute(select(agents))}

    async def loads(self) -> dict[str, int]:
        """Open tickets each agent holds (assigned or claimed)."""
        query = (
            select(tickets.c.holder, func.count())
            .where(tickets.c.open.is_(True), tickets.c.holder.is_not(None))
            .group_by(tickets.c.holder)
        )
        return {holder: int(n) for holder, n in await self._conn.execute(query)}

    async def cursors(self) -> dict[str, str]:
        return {row.queue: row.last_agent_id for row in await self._conn.execute(select(cursors))}

    async def save(
        self,
        views: Iterable[TicketView],
        explanations: Iterable[Explanation],
        last_given: dict[str, str],
        event_ids: Iterable[uuid.UUID],
        now: datetime,
    ) -> None:
        views = list(views)
        rows = [_view_row(v, now) for v in views]
        if rows:
            await self._conn.execute(self._store.upsert_ticket, rows)
        await self._save_awaited(views)
        notes = [
            {"ticket_id": e.ticket_id, "cause_event_id": e.cause_id, "at": e.at, "body": e.as_json()}
            for e in explanations
        ]
        if notes:
            await self._conn.execute(insert(decisions), notes)
        picks = [{"queue": q, "last_agent_id": a} for q, a in last_given.items()]
        if picks:
            await self._conn.execute(self._store.upsert_cursor, picks)
        ids = [{"event_id": event_id} for event_id in event_ids]
        if ids:
            await self._conn.execute(insert(processed_events), ids)

    async def _save_awaited(self, views: list[TicketView]) -> None:
        """Rows for the views awaiting their ticket.assigned; none for the others (only those read with one)."""
        settled = [v.ticket_id for v in views if not v.awaiting_assignment and v.ticket_id in self._awaited]
        if settled:
            await self._conn.execute(delete(awaited_assignments).where(awaited_assignments.c.ticket_id.in_(settled)))
        awaiting = [{"ticket_id": v.ticket_id, "agent_id": v.holder} for v in views if v.awaiting_assignment]
        if awaiting:
            await self._conn.execute(self._store.upsert_awaited, awaiting)


class RoutingStore:
    def __init__(self, url: str) -> None:
        self.writer = make_engine(url, writer=True)
        backend = make_url(url).get_backend_name()
        self.reader = make_engine(url, writer=False) if backend == "sqlite" else self.writer
        self.upsert_ticket = _upsert(backend, tickets, "ticket_id")
        self.upsert_cursor = _upsert(backend, cursors, "queue")
        self.upsert_awaited = _upsert(backend, awaited_assignments, "ticket_id")
        self.upsert_agent = _upsert(backend, agents, "agent_id")
        # An agent named in the agents file keeps the availability set through the API.
        self.upsert_agent_keep_availability = _upsert(backend, agents, "agent_id", keep={"available"})

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
            yield Changes(conn, self)

    async def put_agents(self, roster: Iterable[Agent], *, keep_availability: bool = False) -> None:
        rows = [agent_row(a) for a in roster]
        if rows:
            statement = self.upsert_agent_keep_availability if keep_availability else self.upsert_agent
            async with self.writer.begin() as conn:
                await conn.execute(statement, rows)

    async def agent(self, agent_id: str) -> tuple[Agent, int] | None:
        """The agent and the open tickets they hold."""
        async with self.reader.connect() as conn:
            row = (await conn.execute(select(agents).where(agents.c.agent_id == agent_id))).first()
            if row is None:
                return None
            held = select(func.count()).where(tickets.c.holder == agent_id, tickets.c.open.is_(True))
            return _agent(row), int((await conn.execute(held)).scalar_one())

    async def agents_with_loads(self) -> list[tuple[Agent, int]]:
        held = (
            select(tickets.c.holder, func.count().label("n"))
            .where(tickets.c.open.is_(True), tickets.c.holder.is_not(None))
            .group_by(tickets.c.holder)
            .subquery()
        )
        query = (
            select(agents, func.coalesce(held.c.n, 0).label("open_tickets"))
            .outerjoin(held, held.c.holder == agents.c.agent_id)
            .order_by(agents.c.agent_id)
        )
        async with self.reader.connect() as conn:
            return [(_agent(row), int(row.open_tickets)) for row in await conn.execute(query)]

    async def explanation(self, ticket_id: uuid.UUID) -> tuple[TicketView, list[dict[str, Any]]] | None:
        async with self.reader.connect() as conn:
            row = (await conn.execute(select(tickets).where(tickets.c.ticket_id == ticket_id))).first()
            if row is None:
                return None
            query = select(decisions.c.body).where(decisions.c.ticket_id == ticket_id).order_by(decisions.c.id)
            return _view(row), list((await conn.execute(query)).scalars())
