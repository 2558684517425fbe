"""The ``tickets`` read model: one row per ticket, what lists and queues are read from.

It is never the truth, only the log folded: the repository writes a ticket's
row in the same transaction that appends its events (so it is exactly as
current as the log), and :func:`services.tickets.adapters.repository.rebuild_read_model`
can throw it away and fold it again from the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.database import UtcDateTime
from services.tickets.adapters.database import metadata
from services.tickets.domain import Status, Ticket

tickets = Table(
    "tickets",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("number", String(30), nullable=False, unique=True),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("subject", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("channel_message_id", String(200), nullable=False),
    Column("customer", JSON, nullable=False),
    Column("customer_id", String(200)),  # the directory's id, for "this customer's tickets"
    Column("components", JSON, nullable=False),
    Column("priority", Integer),
    Column("queue", String(100)),
    Column("level", Integer, nullable=False),
    Column("assignee", String(200)),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("resolution", Text),
    Column("resolved_by", String(200)),
    Column("flags", JSON, nullable=False, default=list),
    # Subject, description and public notes, case-folded: what ?q= searches (LIKE; a full-text index later).
    Column("search_text", Text, nullable=False, default=""),
    # The line of a queue: unclaimed tickets, most urgent first, then oldest first.
    Index("ix_tickets_queue_line", "queue", "status", "priority", "opened_at"),
    Index("ix_tickets_status_opened", "status", "opened_at"),
    Index("ix_tickets_opened", "opened_at"),
    Index("ix_tickets_customer", "customer_id", "opened_at"),
    Index("ix_tickets_assignee", "assignee", "status"),
    # One ticket per channel message: how a channel finds the ticket its contact opened.
    Index("ix_tickets_channel_message", "channel", "channel_message_id", unique=True),
)


def row(ticket: Ticket, opened_at: datetime, updated_at: datetime) -> dict[str, Any]:
    return {
        "ticket_id": ticket.ticket_id,
        "number": ticket.number,
        "subject": ticket.subject,
        "description": ticket.description,
        "channel": ticket.channel.value,
        "channel_message_id": ticket.channel_message_id,
        "customer": ticket.customer.model_dump(mode="json"),
        "customer_id": ticket.customer.customer_id,
        "components": list(ticket.components),
        "opened_at": opened_at,
        **_changing(ticket, updated_at),
    }


def changes(ticket: Ticket, updated_at: datetime) -> dict[str, Any]:
    """What an update of the ticket's row writes: only what can change after it was opened."""
    return {"key_ticket_id": ticket.ticket_id, **_changing(ticket, updated_at)}


def _changing(ticket: Ticket, updated_at: datetime) -> dict[str, Any]:
    return {
        "version": ticket.version,
        "status": ticket.status.value,
        "priority": ticket.priority,
        "queue": ticket.queue,
        "level": ticket.level,
        "assignee": ticket.assignee,
        "updated_at": updated_at,
        "resolution": ticket.resolution,
        "resolved_by": ticket.resolved_by,
        "flags": sorted(ticket.flags),
        "search_text": search_text(ticket),
    }


def search_text(ticket: Ticket) -> str:
    return "\n".join([ticket.subject, ticket.description, *ticket.public_notes]).casefold()


async def insert_rows(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(tickets), list(rows))


async def update_rows(conn: AsyncConnection, changed: Sequence[dict[str, Any]]) -> None:
    """Update changed tickets (each as :func:`changes` gives it) by primary key, in one executemany."""
    if changed:
        await conn.execute(update(tickets).where(tickets.c.ticket_id == bindparam("key_ticket_id")), list(changed))


async def clear(conn: AsyncConnection) -> None:
    await conn.execute(delete(tickets))


@dataclass(frozen=True)
class TicketQuery:
    """Which tickets a list shows: every field given narrows it (ranges: ``after`` inclusive, ``before`` exclusive)."""

    limit: int = 50
    status: Status | None = None
    queue: str | None = None
    priority: int | None = None
    assignee: str | None = None
    customer_id: str | None = None
    channel: str | None = None
    channel_message_id: str | None = None
    opened_after: datetime | None = None
    opened_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    text: str | None = None  # words searched in subject, description and public notes
    # Keyset pagination: continue after the ticket (opened_at, number) the last page ended with.
    after: tuple[datetime, str] | None = None


_EQUALS = ("queue", "priority", "assignee", "customer_id", "channel", "channel_message_id")


async def list_tickets(conn: AsyncConnection, q: TicketQuery) -> list[dict[str, Any]]:
    """Newest first (ties by number), narrowed by ``q``."""
    query = select(tickets).order_by(tickets.c.opened_at.desc(), tickets.c.number.desc()).limit(q.limit)
    if q.status is not None:
        query = query.where(tickets.c.status == q.status.value)
    for name in _EQUALS:
        if (value := getattr(q, name)) is not None:
            query = query.where(tickets.c[name] == value)
    for column, after, before in (
        (tickets.c.opened_at, q.opened_after, q.opened_before),
        (tickets.c.updated_at, q.updated_after, q.updated_before),
    ):
        if after is not None:
            query = query.where(column >= after)
        if before is not None:
            query = query.where(column < before)
    if q.text:
        pattern = "%" + _escape_like(q.text.casefold()) + "%"
        query = query.where(tickets.c.search_text.like(pattern, escape="\\"))
    if q.after is not None:
        opened_at, number = q.after
        query = query.where(
            (tickets.c.opened_at < opened_at) | ((tickets.c.opened_at == opened_at) & (tickets.c.number < number))
        )
    return [dict(r._mapping) for r in await conn.execute(query)]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _waiting_in(queue: str) -> Any:
    return (tickets.c.queue == queue) & (tickets.c.status == Status.OPEN.value)


_LINE_ORDER = (tickets.c.priority.asc().nulls_last(), tickets.c.opened_at.asc(), tickets.c.number.asc())


async def queue_line(conn: AsyncConnection, queue: str, limit: int) -> list[dict[str, Any]]:
    """The tickets waiting in ``queue`` for an agent: most urgent first, then oldest first."""
    query = select(tickets).where(_waiting_in(queue)).order_by(*_LINE_ORDER).limit(limit)
    return [dict(r._mapping) for r in await conn.execute(query)]


async def take_head_of_line(conn: AsyncConnection, queue: str) -> Any | None:
    """The id of the ticket at the head of ``queue``, locked for this transaction; None if the line is empty.

    On PostgreSQL the row is locked FOR UPDATE SKIP LOCKED: an agent taking the
    next ticket at the same moment skips it and gets the one behind it, instead
    of waiting and then failing. SQLite needs no lock: its writer transactions
    run one at a time.
    """
    query = select(tickets.c.ticket_id).where(_waiting_in(queue)).order_by(*_LINE_ORDER).limit(1)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return (await conn.execute(query)).scalar_one_or_none()


async def queues(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every queue that has ever held a ticket: how many wait in it, and since when the oldest waits."""
    is_waiting = tickets.c.status == Status.OPEN.value
    query = (
        select(
            tickets.c.queue,
            func.count(case((is_waiting, 1))).label("depth"),
            func.min(case((is_waiting, tickets.c.opened_at))).label("oldest_opened_at"),
        )
        .where(tickets.c.queue.is_not(None))
        .group_by(tickets.c.queue)
        .order_by(tickets.c.queue)
    )
    return [dict(r._mapping) for r in await conn.execute(query)]


async def number_of(conn: AsyncConnection, ticket_id: Any) -> str:
    return (await conn.execute(select(tickets.c.number).where(tickets.c.ticket_id == ticket_id))).scalar_one()
