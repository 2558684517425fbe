"""Tickets loaded from their events, and new events saved together with the read model.

:func:`save` is the one way the service writes a ticket: it appends the new
events (optimistic concurrency by expected version) and writes the tickets'
read-model rows, in the caller's transaction, so the read model is updated
exactly once for every event that is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.envelope import Envelope, new_envelope
from contracts.tickets import MESSAGE_OF_DATA
from runtime.logs import get_logger
from services.tickets.adapters import event_store, read_model
from services.tickets.adapters.database import TicketDatabase
from services.tickets.domain import Ticket, TicketEvent

log = get_logger("tickets.repository")

REBUILD_FLUSH_ROWS = 1000


@dataclass(frozen=True)
class TicketHistory:
    """A ticket's stored events and the ticket they add up to."""

    ticket: Ticket
    events: tuple[Envelope[Any], ...]

    @classmethod
    def of(cls, ticket_id: uuid.UUID, events: Sequence[Envelope[Any]]) -> TicketHistory:
        return cls(Ticket.from_events(ticket_id, [e.data for e in events]), tuple(events))

    def extended(self, events: Sequence[Envelope[Any]]) -> TicketHistory:
        return TicketHistory(self.ticket.applied(e.data for e in events), self.events + tuple(events))

    @property
    def correlation_id(self) -> str:
        """The original contact's correlation id, which an agent's changes carry on."""
        return self.events[0].correlation_id

    @property
    def finished_at(self) -> datetime | None:
        """When the ticket was last resolved or closed (the reopen window counts from there)."""
        finished = [e.occurred_at for e in self.events if e.type in ("ticket.resolved", "ticket.closed")]
        return finished[-1] if finished else None

    def read_model_row(self) -> dict[str, Any]:
        return read_model.row(self.ticket, self.events[0].occurred_at, self.events[-1].occurred_at)


@dataclass(frozen=True)
class Change:
    """New events for a ticket and the ticket they make of it; ``expected_version`` 0: they open it.

    It carries the ticket as the decisions left it, so saving does not fold the events again.
    """

    expected_version: int
    events: Sequence[Envelope[Any]]
    ticket: Ticket

    @property
    def last_at(self) -> datetime:
        """When the last of the events happened: the ticket's new ``updated_at``."""
        return self.events[-1].occurred_at

    @classmethod
    def of(cls, before: Ticket | None, events: Sequence[Envelope[Any]]) -> Change:
        """``events`` recorded on the ticket ``before`` (None: they open one)."""
        data = [e.data for e in events]
        if before is None:
            return cls(0, events, Ticket.from_events(events[0].ticket_id, data))  # type: ignore[arg-type]
        return cls(before.version, events, before.applied(data))


def recorded(
    ticket_id: uuid.UUID,
    events: Sequence[TicketEvent],
    *,
    at: datetime,
    cause: Envelope[Any] | None = None,
    correlation_id: str | None = None,
) -> list[Envelope[Any]]:
    """Wrap a decision's events in envelopes: caused by ``cause`` (a message) or by an agent."""
    return [
        new_envelope(
            MESSAGE_OF_DATA[type(event)],
            event,
            ticket_id=ticket_id,
            causation=cause,
            correlation_id=correlation_id,
            occurred_at=at,
        )
        for event in events
    ]


async def load(conn: AsyncConnection, ticket_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TicketHistory]:
    streams = await event_store.load_streams(conn, ticket_ids)
    return {ticket_id: TicketHistory.of(ticket_id, events) for ticket_id, events in streams.items()}


async def load_tickets(conn: AsyncConnection, ticket_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Ticket]:
    """The tickets as their events make them, without their histories (what deciding needs)."""
    streams = await event_store.load_stream_data(conn, ticket_ids)
    return {ticket_id: Ticket.from_events(ticket_id, data) for ticket_id, data in streams.items()}  # type: ignore[arg-type]


async def find(conn: AsyncConnection, ref: str) -> uuid.UUID | None:
    """The ticket a reference names: its id (a UUID) or its number (``HD-12``)."""
    try:
        ticket_id = uuid.UUID(ref)
    except ValueError:
        return await event_store.ticket_id_for_number(conn, ref)
    return ticket_id if await event_store.known_tickets(conn, [ticket_id]) else None


async def save(conn: AsyncConnection, changes: Sequence[Change]) -> None:
    """Append every change's events and update the read model, in the caller's transaction."""
    changes = [c for c in changes if c.events]
    await event_store.append_streams(conn, [event_store.Stream(c.expected_version, c.events) for c in changes])
    opened, moved = [c for c in changes if c.expected_version == 0], [c for c in changes if c.expected_version > 0]
    await read_model.insert_rows(conn, [read_model.row(c.ticket, c.events[0].occurred_at, c.last_at) for c in opened])
    await read_model.update_rows(conn, [read_model.changes(c.ticket, c.last_at) for c in moved])


class RebuildProgress(Protocol):
    """What a rebuild reports as it goes (the command's bar or log lines)."""

    def start(self, events: int) -> None: ...
    def advance(self, events: int, tickets: int) -> None: ...
    def finish(self) -> None: ...


async def rebuild_read_model(db: TicketDatabase, progress: RebuildProgress | None = None) -> int:
    """Throw the read model away and fold it again from the log; returns the tickets written.

    One transaction: readers see the old read model until the new one is complete.
    Appenders wait meanwhile (SQLite's write lock, PostgreSQL's append lock), so
    no event can slip in between the log read here and the rows written here.
    """
    written = events = 0
    async with db.writer.begin() as conn:
        await event_store.lock_for_append(conn)
        if progress is not None:
            progress.start(await event_store.count_after(conn, 0))
        await read_model.clear(conn)
        rows: list[dict[str, Any]] = []
        async for stream in event_store.read_all_streams(conn):
            ticket = Ticket.from_events(stream.ticket_id, stream.data)  # type: ignore[arg-type]
            rows.append(read_model.row(ticket, stream.first_at, stream.last_at))
            events += len(stream.data)
            if len(rows) >= REBUILD_FLUSH_ROWS:
                written += await _flush(conn, rows, events, progress)
                events = 0
        written += await _flush(conn, rows, events, progress)
    if progress is not None:
        progress.finish()
    log.info("read model rebuilt", tickets=written)
    return written


async def _flush(
    conn: AsyncConnection, rows: list[dict[str, Any]], events: int, progress: RebuildProgress | None
) -> int:
    count = len(rows)
    await read_model.insert_rows(conn, rows)
    rows.clear()
    if progress is not None:
        progress.advance(events, count)
    return count
