"""The ``ticket_deadlines`` read model: each ticket's SLA deadlines, as escalation last published them.

Escalation republishes a ticket's whole set of deadlines on every change, so
the newest message per ticket is the truth. A message older than the stored
one (a redelivery, or a replay of the compacted topic) never overwrites it,
and the same message twice writes nothing: the row remembers which message
(``event_id``, ``occurred_at``) it holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    String,
    Table,
    Uuid,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.sla import SlaDeadlinesChanged
from runtime.database import UtcDateTime
from services.tickets.adapters.database import metadata

ticket_deadlines = Table(
    "ticket_deadlines",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("number", String(30), nullable=False),
    Column("policy", String(200), nullable=False),
    Column("calendar", String(200), nullable=False),
    Column("deadlines", JSON, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
)


def newest_per_ticket(messages: Sequence[SlaDeadlinesChanged]) -> dict[uuid.UUID, SlaDeadlinesChanged]:
    """The newest message of each ticket; ties broken by event id so every replica picks the same."""
    newest: dict[uuid.UUID, SlaDeadlinesChanged] = {}
    for message in messages:
        assert message.ticket_id is not None  # the handler refuses messages without one
        held = newest.get(message.ticket_id)
        if held is None or _order(message) > _order(held):
            newest[message.ticket_id] = message
    return newest


def _order(message: SlaDeadlinesChanged) -> tuple[Any, str]:
    return message.occurred_at, str(message.event_id)


async def record(conn: AsyncConnection, messages: Sequence[SlaDeadlinesChanged]) -> int:
    """Store each ticket's newest deadlines unless a newer (or the same) message is stored; returns rows written."""
    newest = newest_per_ticket(messages)
    if not newest:
        return 0
    stored = {
        row.ticket_id: (row.occurred_at, str(row.event_id))
        for row in await conn.execute(
            select(ticket_deadlines.c.ticket_id, ticket_deadlines.c.occurred_at, ticket_deadlines.c.event_id).where(
                ticket_deadlines.c.ticket_id.in_(list(newest))
            )
        )
    }
    new = [_row(m) for t, m in newest.items() if t not in stored]
    newer = [{"key_ticket_id": t, **_row(m)} for t, m in newest.items() if t in stored and _order(m) > stored[t]]
    if new:
        await conn.execute(insert(ticket_deadlines), new)
    if newer:
        await conn.execute(
            update(ticket_deadlines).where(ticket_deadlines.c.ticket_id == bindparam("key_ticket_id")), newer
        )
    return len(new) + len(newer)


def _row(message: SlaDeadlinesChanged) -> dict[str, Any]:
    data = message.data
    return {
        "ticket_id": message.ticket_id,
        "number": data.number,
        "policy": data.policy,
        "calendar": data.calendar,
        "deadlines": [d.model_dump(mode="json") for d in data.deadlines],
        "event_id": message.event_id,
        "occurred_at": message.occurred_at,
    }


async def of_ticket(conn: AsyncConnection, ticket_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await conn.execute(select(ticket_deadlines).where(ticket_deadlines.c.ticket_id == ticket_id))).first()
    return dict(row._mapping) if row else None
