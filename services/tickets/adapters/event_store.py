"""The ticket log: every ticket event, once, in one table that is also the outbox.

``ticket_events`` holds each event under two keys. ``(ticket_id, version)`` is
unique: two writers that both read version 3 both try to write version 4, and
the second hits the key (:class:`ConcurrencyConflict`) instead of silently
overwriting. ``position`` orders the whole log; the relay tails it.

A tailing reader must never skip an event that commits late. On PostgreSQL a
sequence hands out positions at INSERT time, so a transaction that inserted
position 7 can commit after another committed position 8; a reader that saw 8
and moved on would skip 7 forever. So every appending transaction first takes
``LOCK TABLE ticket_events IN EXCLUSIVE MODE`` (as pyeventsourcing's
PostgreSQL recorder does): appenders queue, hold the lock until they commit,
and positions become visible in commit order. Readers are not blocked (the lock
admits plain SELECTs). On SQLite a writer holds the database's write lock from
BEGIN to COMMIT, which gives the same order.

Other tables here: ``ticket_numbers`` hands out human numbers (``HD-<seq>``)
from the database, so replicas never allocate the same one;
``processed_commands`` remembers which command ids were applied (written in the
transaction that records their events); ``relay_positions`` is how far the
relay has published.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.envelope import Envelope
from contracts.registry import MESSAGE_TYPES
from runtime.database import UtcDateTime, dialect_insert
from services.tickets.adapters.database import metadata

# BIGINT on PostgreSQL (a sequence), INTEGER on SQLite so the column is the rowid.
Position = BigInteger().with_variant(Integer, "sqlite")
STREAM_KEY = "uq_ticket_events_stream"

ticket_events = Table(
    "ticket_events",
    metadata,
    Column("position", Position, primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("ticket_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("correlation_id", String(200), nullable=False),
    Column("causation_id", String(200)),
    UniqueConstraint("ticket_id", "version", name=STREAM_KEY),
)

ticket_numbers = Table(
    "ticket_numbers",
    metadata,
    Column("seq", Position, primary_key=True, autoincrement=True),
    Column("ticket_id", Uuid, nullable=False, unique=True),
)

processed_commands = Table(
    "processed_commands",
    metadata,
    Column("command_id", Uuid, primary_key=True),
    Column("ticket_id", Uuid, nullable=False),
    Column("processed_at", UtcDateTime, nullable=False),
    Column("outcome", String(200), nullable=False),  # applied, unchanged or rejected:<rule>
)

relay_positions = Table(
    "relay_positions",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

NUMBER_PREFIX = "HD-"


class ConcurrencyConflict(Exception):
    """Another writer appended to the ticket since it was read; reload and decide again."""


@dataclass(frozen=True)
class Stream:
    """New events for one ticket, to be appended after ``expected_version``."""

    expected_version: int
    events: Sequence[Envelope[Any]]


@dataclass(frozen=True)
class StoredEvent:
    position: int
    message: Envelope[Any]


# --- appending ----------------------------------------------------------------


async def append(conn: AsyncConnection, expected_version: int, events: Sequence[Envelope[Any]]) -> None:
    """Append one ticket's new events after ``expected_version``."""
    await append_streams(conn, [Stream(expected_version, events)])


async def append_streams(conn: AsyncConnection, streams: Sequence[Stream]) -> None:
    """Append many tickets' events in one INSERT, inside the caller's transaction.

    Raises :class:`ConcurrencyConflict` if any ticket moved past its expected
    version; the caller's transaction is then to be rolled back as a whole.
    """
    rows = [row for stream in streams for row in _rows(stream)]
    if not rows:
        return
    await lock_for_append(conn)
    try:
        await conn.execute(insert(ticket_events), rows)
    except IntegrityError as exc:
        if _is_stream_conflict(exc):
            raise ConcurrencyConflict("a ticket was changed concurrently; reload it and try again") from exc
        raise


async def lock_for_append(conn: AsyncConnection) -> None:
    """Make positions visible in commit order (see the module docstring)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("LOCK TABLE ticket_events IN EXCLUSIVE MODE"))


def _rows(stream: Stream) -> Iterable[dict[str, Any]]:
    for offset, message in enumerate(stream.events, start=1):
        version = stream.expected_version + offset
        if message.ticket_id is None or message.data.version != version:
            raise ValueError(f"event {message.type} must carry a ticket id and version {version}")
        yield {
            "event_id": message.event_id,
            "ticket_id": message.ticket_id,
            "version": version,
            "type": message.type,
            "schema_version": message.schema_version,
            "data": message.data.model_dump_json(),
            "occurred_at": message.occurred_at,
            "correlation_id": message.correlation_id,
            "causation_id": message.causation_id,
        }


def _is_stream_conflict(exc: IntegrityError) -> bool:
    # PostgreSQL names the constraint; SQLite names its columns.
    detail = str(exc.orig)
    return STREAM_KEY in detail or "ticket_events.ticket_id, ticket_events.version" in detail


# --- reading ------------------------------------------------------------------


async def load_streams(conn: AsyncConnection, ticket_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[Envelope[Any]]]:
    """The events of each ticket in version order (absent tickets are left out)."""
    streams: dict[uuid.UUID, list[Envelope[Any]]] = defaultdict(list)
    for row in await _stream_rows(conn, ticket_events.c, ticket_ids):
        streams[row.ticket_id].append(_message(row))
    return dict(streams)


async def load_stream_data(conn: AsyncConnection, ticket_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[BaseModel]]:
    """Only the data of each ticket's events, in version order: what folding a ticket needs.

    Deciding a command needs the ticket, not its history; leaving the envelopes
    out saves reading and checking columns nobody looks at.
    """
    columns = (ticket_events.c.ticket_id, ticket_events.c.type, ticket_events.c.schema_version, ticket_events.c.data)
    streams: dict[uuid.UUID, list[BaseModel]] = defaultdict(list)
    for ticket_id, type_, schema_version, data in await _stream_rows(conn, columns, ticket_ids):
        streams[ticket_id].append(_data_model(MESSAGE_TYPES[(type_, schema_version)]).model_validate_json(data))
    return dict(streams)


async def _stream_rows(
    conn: AsyncConnection, columns: Iterable[Any], ticket_ids: Iterable[uuid.UUID]
) -> list[Row[Any]]:
    """``columns`` of the events of the tickets, ticket by ticket in version order (one query per 500 tickets)."""
    rows: list[Row[Any]] = []
    for chunk in _chunks(list(set(ticket_ids)), 500):
        result = await conn.execute(
            select(*columns)
            .where(ticket_events.c.ticket_id.in_(chunk))
            .order_by(ticket_events.c.ticket_id, ticket_events.c.version)
        )
        rows += result.all()
    return rows


async def read_after(conn: AsyncConnection, position: int, limit: int) -> list[StoredEvent]:
    """Up to ``limit`` events after ``position``, in log order."""
    return [StoredEvent(row.position, _message(row)) for row in await read_rows_after(conn, position, limit)]


async def read_rows_after(conn: AsyncConnection, position: int, limit: int) -> Sequence[Row[Any]]:
    """Up to ``limit`` events after ``position``, in log order, as stored: the data still its JSON text.

    For the relay, which publishes that text as it is rather than parsing it into a message first.
    """
    rows = await conn.execute(
        select(ticket_events).where(ticket_events.c.position > position).order_by(ticket_events.c.position).limit(limit)
    )
    return rows.all()


@dataclass
class StoredStream:
    """One ticket's whole stream as folding needs it: the events' data, and when the first and last happened."""

    ticket_id: uuid.UUID
    data: list[BaseModel]
    first_at: datetime
    last_at: datetime


async def read_all_streams(conn: AsyncConnection, batch: int = 5000) -> AsyncIterator[StoredStream]:
    """Every ticket's stream, in version order (for rebuilding read models).

    Only the data is parsed, not whole messages: checking every envelope again
    was most of a rebuild's time, and folding needs none of it.
    """
    columns = (ticket_events.c.ticket_id, ticket_events.c.type, ticket_events.c.schema_version, ticket_events.c.data)
    query = select(*columns, ticket_events.c.occurred_at).order_by(ticket_events.c.ticket_id, ticket_events.c.version)
    result = await conn.stream(query.execution_options(yield_per=batch))
    stream: StoredStream | None = None
    async for rows in result.partitions():  # a batch at a time: row by row, the async hand-over cost more than the row
        for ticket_id, type_, schema_version, data, occurred_at in rows:
            parsed = _data_model(MESSAGE_TYPES[(type_, schema_version)]).model_validate_json(data)
            if stream is None or stream.ticket_id != ticket_id:
                if stream is not None:
                    yield stream
                stream = StoredStream(ticket_id, [], occurred_at, occurred_at)
            stream.data.append(parsed)
            stream.last_at = occurred_at
    if stream is not None:
        yield stream


async def count_after(conn: AsyncConnection, position: int) -> int:
    """How many events lie after ``position``: the newest position less it, one look into the key.

    Counting the events instead read every one of them, each time the relay's lag
    is measured, most when the relay is furthest behind. A PostgreSQL sequence
    skips the positions of rolled-back appends, so this can overstate by those.
    """
    newest = (await conn.execute(select(func.max(ticket_events.c.position)))).scalar_one()
    return max(0, (newest or 0) - position)


def _message(row: Any) -> Envelope[Any]:
    model = MESSAGE_TYPES[(row.type, row.schema_version)]
    # Validated again though it was valid when stored: from typed columns that costs less than
    # pydantic's model_construct (measured), so skipping it would buy nothing.
    return model.model_validate(
        {
            "event_id": row.event_id,
            "type": row.type,
            "schema_version": row.schema_version,
            "ticket_id": row.ticket_id,
            "occurred_at": row.occurred_at,
            "correlation_id": row.correlation_id,
            "causation_id": row.causation_id,
            # Parsed straight from the stored JSON by pydantic (much faster than json.loads, then validating).
            "data": _data_model(model).model_validate_json(row.data),
        }
    )


@functools.cache
def _data_model(model: type[Envelope[Any]]) -> type[BaseModel]:
    return model.model_fields["data"].annotation  # type: ignore[return-value]


# --- ticket numbers -------------------------------------------------------------


async def allocate_numbers(conn: AsyncConnection, ticket_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """A new human number for each ticket; the database's sequence makes them unique."""
    if not ticket_ids:
        return {}
    rows = await conn.execute(
        insert(ticket_numbers).returning(ticket_numbers.c.seq, ticket_numbers.c.ticket_id),
        [{"ticket_id": t} for t in ticket_ids],
    )
    return {row.ticket_id: f"{NUMBER_PREFIX}{row.seq}" for row in rows}


async def known_tickets(conn: AsyncConnection, ticket_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``ticket_ids`` already have a ticket."""
    found: set[uuid.UUID] = set()
    for chunk in _chunks(list(set(ticket_ids)), 500):
        rows = await conn.execute(select(ticket_numbers.c.ticket_id).where(ticket_numbers.c.ticket_id.in_(chunk)))
        found.update(rows.scalars())
    return found


async def ticket_id_for_number(conn: AsyncConnection, number: str) -> uuid.UUID | None:
    seq = parse_number(number)
    if seq is None:
        return None
    rows = await conn.execute(select(ticket_numbers.c.ticket_id).where(ticket_numbers.c.seq == seq))
    return rows.scalar_one_or_none()


def parse_number(number: str) -> int | None:
    """``HD-12`` → 12 (also ``hd-12``); None for anything else."""
    prefix, _, digits = number.partition("-")
    if prefix.upper() != NUMBER_PREFIX.rstrip("-") or not digits.isdigit() or len(digits) > 18:
        return None
    return int(digits)


# --- processed commands -----------------------------------------------------------


async def processed(conn: AsyncConnection, command_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for chunk in _chunks(list(set(command_ids)), 500):
        rows = await conn.execute(
            select(processed_commands.c.command_id).where(processed_commands.c.command_id.in_(chunk))
        )
        found.update(rows.scalars())
    return found


@dataclass(frozen=True)
class ProcessedCommand:
    command_id: uuid.UUID
    ticket_id: uuid.UUID
    outcome: str


async def mark_processed(conn: AsyncConnection, commands: Sequence[ProcessedCommand], at: datetime) -> None:
    if commands:
        await conn.execute(
            insert(processed_commands),
            [
                {"command_id": c.command_id, "ticket_id": c.ticket_id, "outcome": c.outcome, "processed_at": at}
                for c in commands
            ],
        )


# --- relay positions -----------------------------------------------------------


async def relay_position(conn: AsyncConnection, name: str) -> int:
    rows = await conn.execute(select(relay_positions.c.position).where(relay_positions.c.name == name))
    return rows.scalar_one_or_none() or 0


async def advance_relay_position(conn: AsyncConnection, name: str, position: int) -> bool:
    """Save ``position`` if it is past the saved one; False when the saved one is already as far or further.

    Only forward: a relay that lost its leadership without knowing it yet (its lock's
    session died) must never move the position back under the relay that took over.
    One statement, so two relays saving at once cannot both read the old value.
    """
    upsert = dialect_insert(conn.dialect.name)(relay_positions).values(name=name, position=position)
    advanced = upsert.on_conflict_do_update(
        index_elements=["name"],
        set_={"position": upsert.excluded.position},
        where=relay_positions.c.position < upsert.excluded.position,
    )
    return (await conn.execute(advanced)).rowcount == 1


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
