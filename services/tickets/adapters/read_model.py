"""The ``tickets`` read model: one row per ticket, what lists and queues are read from.

It is never the truth, only the log folded: the repository writes a ticket's
row in the same transaction that appends its events (so it is exactly as
current as the log), and :func:`services.tickets.adapters.repository.rebuild_read_model`
can throw it away and fold it again from the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, String, Table, Text, Uuid, bindparam, delete, insert, select, update
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
    Column("components", JSON, nullable=False),
    Column("priority", Integer),
    Column("queue", String(100)),
    Column("level", Integer, nullable=False),
    Column("assignee", String(200)),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("resolution", Text),
    Column("resolved_by", String(200)),
    # The line of a queue: unclaimed tickets, most urgent first, then oldest first.
    Index("ix_tickets_queue_line", "queue", "status", "priority", "opened_at"),
    Index("ix_tickets_status_opened", "status", "opened_at"),
    Index("ix_tickets_opened", "opened_at"),
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
    }


async def insert_rows(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(tickets), list(rows))


async def update_rows(conn: AsyncConnection, changed: Sequence[dict[str, Any]]) -> None:
    """Update changed tickets (each as :func:`changes` gives it) by primary key, in one executemany."""
    if changed:
        await conn.execute(update(tickets).where(tickets.c.ticket_id == bindparam("key_ticket_id")), list(changed))


async def clear(conn: AsyncConnection) -> None:
    await conn.execute(delete(tickets))


async def list_tickets(
    conn: AsyncConnection,
    *,
    status: Status | None,
    queue: str | None,
    limit: int,
    channel: str | None = None,
    channel_message_id: str | None = None,
) -> list[dict[str, Any]]:
    """Newest first, optionally of one status, queue, channel or channel message."""
    query = select(tickets).order_by(tickets.c.opened_at.desc(), tickets.c.number.desc()).limit(limit)
    if status is not None:
        query = query.where(tickets.c.status == status.value)
    if queue is not None:
        query = query.where(tickets.c.queue == queue)
    if channel is not None:
        query = query.where(tickets.c.channel == channel)
    if channel_message_id is not None:
        query = query.where(tickets.c.channel_message_id == channel_message_id)
    return [dict(r._mapping) for r in await conn.execute(query)]


async def queue_line(conn: AsyncConnection, queue: str, limit: int) -> list[dict[str, Any]]:
    """The tickets waiting in ``queue`` for an agent: most urgent first, then oldest first."""
    query = (
        select(tickets)
        .where(tickets.c.queue == queue, tickets.c.status == Status.OPEN.value)
        .order_by(tickets.c.priority.asc().nulls_last(), tickets.c.opened_at.asc(), tickets.c.number.asc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in await conn.execute(query)]
