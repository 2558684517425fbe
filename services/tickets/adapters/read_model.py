"""The ``tickets`` read model: one row per ticket, what lists and queues are read from.

It is never the truth, only the log folded: the repository writes a ticket's
row in the same transaction that appends its events (so it is exactly as
current as the log), and :func:`services.tickets.adapters.repository.rebuild_read_model`
can throw it away and fold it again from the log.

``ticket_population`` counts the rows by status, priority and queue, kept in
the same writes: the census and the queue list read it instead of counting
every ticket, which grew with the read model (a full scan every census).

Search (``?q=``) reads ``search_text``: subject, description and public notes
(never internal notes), case- and accent-folded here in Python, so that both
databases see the same words. On PostgreSQL it is full-text search over a GIN
index on ``to_tsvector('simple', search_text)`` ('simple': no stemming and no
stop words, so names, codes and product words match as typed), with the web
search syntax of ``websearch_to_tsquery`` ("quoted phrase", ``or``, ``-word``);
a query of plain words also matches its last word as a prefix, for a client
that searches as the agent types. On SQLite (the embedded, single-desk default)
it is a LIKE per word: every word must appear (a prefix or part of a longer
word counts), ``-word`` must not; quotes and ``or`` are not interpreted. FTS5
would need a virtual table kept in step by triggers outside the table metadata
(and the migrations) for a database that holds one small desk's tickets; LIKE
is exact about what it matches and needs nothing more.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
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
    false,
    func,
    insert,
    literal_column,
    not_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.database import UtcDateTime, dialect_insert
from services.tickets.adapters.database import metadata
from services.tickets.domain import FIRST_LEVEL, Status, Ticket

_INDEXED_WORDS = "to_tsvector('simple'::regconfig, search_text)"
NO_PRIORITY, NO_QUEUE = 0, ""  # how the population writes "not prioritised yet" and "in no queue yet" in its key

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
    # Subject, description and public notes, case- and accent-folded: what ?q= searches (see list_tickets).
    Column("search_text", Text, nullable=False, default=""),
    # The line of a queue: unclaimed tickets, most urgent first, then oldest first.
    # (number last: the line's order is total, so a LIMIT reads only the head of the index, nothing is sorted)
    Index("ix_tickets_queue_line", "queue", "status", "priority", "opened_at", "number"),
    Index("ix_tickets_status_opened", "status", "opened_at"),
    Index("ix_tickets_opened", "opened_at"),
    Index("ix_tickets_customer", "customer_id", "opened_at"),
    Index("ix_tickets_assignee", "assignee", "status"),
    # One ticket per channel message: how a channel finds the ticket its contact opened.
    Index("ix_tickets_channel_message", "channel", "channel_message_id", unique=True),
    # Full-text search on PostgreSQL (SEARCH_DOCUMENT below); SQLite searches with LIKE (see the module docstring).
    Index("ix_tickets_search", text(_INDEXED_WORDS), postgresql_using="gin").ddl_if(dialect="postgresql"),
)

# The words of a ticket as PostgreSQL's full-text search sees them: this very expression is
# what ix_tickets_search indexes, which is how the planner knows that index answers a search.
_SIMPLE = literal_column("'simple'::regconfig")
SEARCH_DOCUMENT = postgresql.to_tsvector(_SIMPLE, tickets.c.search_text)

# How many tickets there are of each status, priority and queue, kept by every write of the rows
# above: the census and the queue list read these few hundred rows instead of counting a million.
# A kind that emptied keeps its row at 0 (the queue list shows every queue that ever held a ticket).
ticket_population = Table(
    "ticket_population",
    metadata,
    Column("status", String(20), primary_key=True),
    Column("priority", Integer, primary_key=True),  # NO_PRIORITY: not prioritised yet
    Column("queue", String(100), primary_key=True),  # NO_QUEUE: in no queue yet
    Column("tickets", Integer, nullable=False),
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
    return folded("\n".join([ticket.subject, ticket.description, *ticket.public_notes]))


# The combining diacritical marks (U+0300..U+036F and the blocks that extend them): what NFKD
# splits off é, ñ, ø... Other scripts' combining signs are letters of their words and stay.
_DIACRITICS = dict.fromkeys(
    c
    for start, end in ((0x300, 0x370), (0x1AB0, 0x1B00), (0x1DC0, 0x1E00), (0x20D0, 0x2100), (0xFE20, 0xFE30))
    for c in range(start, end)
)


def folded(words: str) -> str:
    """``Résumé`` → ``resume``: what a ticket's text and a query are both reduced to before they meet."""
    if words.isascii():
        return words.lower()  # most text; the same as casefold() there, and ten times cheaper than the rest
    return unicodedata.normalize("NFKD", words).translate(_DIACRITICS).casefold()


async def insert_rows(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(tickets), list(rows))
        await _count(conn, Counter(_kind(r) for r in rows))


async def update_rows(conn: AsyncConnection, changed: Sequence[dict[str, Any]]) -> None:
    """Update changed tickets (each as :func:`changes` gives it) by primary key, in one executemany."""
    if not changed:
        return
    ids = [c["key_ticket_id"] for c in changed]
    kinds = select(tickets.c.status, tickets.c.priority, tickets.c.queue).where(tickets.c.ticket_id.in_(ids))
    moved = Counter(_kind(c) for c in changed)
    moved.subtract(_kind(r._mapping) for r in await conn.execute(kinds))
    await conn.execute(update(tickets).where(tickets.c.ticket_id == bindparam("key_ticket_id")), list(changed))
    await _count(conn, moved)


async def clear(conn: AsyncConnection) -> None:
    await conn.execute(delete(tickets))
    await conn.execute(delete(ticket_population))


# --- the population: how many tickets of each kind --------------------------------------


def _kind(row: Any) -> tuple[str, int, str]:
    return row["status"], row["priority"] or NO_PRIORITY, row["queue"] or NO_QUEUE


async def _count(conn: AsyncConnection, delta: Counter[tuple[str, int, str]]) -> None:
    """Add ``delta`` (tickets come and go by kind) to the population, in one upsert."""
    rows = [{"status": s, "priority": p, "queue": q, "tickets": n} for (s, p, q), n in sorted(delta.items()) if n]
    if rows:
        upsert = dialect_insert(conn.dialect.name)(ticket_population)
        added = upsert.on_conflict_do_update(
            index_elements=["status", "priority", "queue"],
            set_={"tickets": ticket_population.c.tickets + upsert.excluded.tickets},
        )
        await conn.execute(added, rows)


async def population(conn: AsyncConnection) -> list[tuple[str, int | None, str | None, int]]:
    """(status, priority, queue, tickets) of every kind of ticket there is: what the census reports."""
    query = select(ticket_population).where(ticket_population.c.tickets > 0)
    return [
        (r.status, r.priority or None, r.queue or None, r.tickets)
        for r in await conn.execute(query.order_by(*ticket_population.primary_key))
    ]


async def oldest_waiting(conn: AsyncConnection) -> dict[str, datetime]:
    """When the oldest ticket waiting in each queue was opened (queues nobody waits in are left out).

    One look into the queue line's index per queue and priority that has someone
    waiting (the population says which), instead of reading every waiting ticket.
    """
    waiting = select(ticket_population.c.queue, ticket_population.c.priority).where(
        ticket_population.c.status == Status.OPEN.value,
        ticket_population.c.queue != NO_QUEUE,
        ticket_population.c.tickets > 0,
    )
    oldest: dict[str, datetime] = {}
    for queue, priority in (await conn.execute(waiting)).all():
        same_priority = tickets.c.priority.is_(None) if priority == NO_PRIORITY else tickets.c.priority == priority
        first = select(func.min(tickets.c.opened_at)).where(_waiting_in(queue), same_priority)
        opened_at = (await conn.execute(first)).scalar_one()
        if opened_at is not None and (queue not in oldest or opened_at < oldest[queue]):
            oldest[queue] = opened_at
    return oldest


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
        query = query.where(_matching(conn.dialect.name, folded(q.text)))
    if q.after is not None:
        opened_at, number = q.after
        query = query.where(
            (tickets.c.opened_at < opened_at) | ((tickets.c.opened_at == opened_at) & (tickets.c.number < number))
        )
    return [dict(r._mapping) for r in await conn.execute(query)]


# A word as both searches know it: letters and digits (underscore and punctuation separate words).
_WORD = re.compile(r"[^\W_]+")


def _matching(dialect: str, query: str) -> Any:
    """The condition a ticket's ``search_text`` meets when it matches the (folded) ``query``."""
    if not _WORD.search(query):
        return false()  # nothing searchable (punctuation only): nothing matches, on both databases
    if dialect == "postgresql":
        return SEARCH_DOCUMENT.op("@@")(_tsquery(query))
    condition = None
    for token in query.split():
        excluded = token.startswith("-")
        for word in _WORD.findall(token):
            like = tickets.c.search_text.like(f"%{word}%")  # a word has no % or _ to escape
            term = not_(like) if excluded else like
            condition = term if condition is None else condition & term
    return condition


def _tsquery(query: str) -> Any:
    """``websearch_to_tsquery``; for plain words, the last one also as a prefix (``'dro':*`` finds "drops")."""
    words = query.split()
    # Only a query of plain words: in one with "quotes", -word or "or", the last word means what the syntax says.
    if "or" in words or not all(_WORD.fullmatch(word) for word in words):
        return postgresql.websearch_to_tsquery(_SIMPLE, query)
    *before, last = words
    prefix = postgresql.to_tsquery(_SIMPLE, last + ":*")  # a word holds no tsquery operators
    return postgresql.websearch_to_tsquery(_SIMPLE, " ".join(before)).op("&&")(prefix) if before else prefix


def _waiting_in(queue: str) -> Any:
    return (tickets.c.queue == queue) & (tickets.c.status == Status.OPEN.value)


# Owned and not finished: what an escalated ticket someone already works on is.
_BEING_WORKED = (Status.IN_PROGRESS.value, Status.WAITING_ON_CUSTOMER.value, Status.WAITING_ON_THIRD_PARTY.value)


def _escalated_and_owned_in(queue: str) -> Any:
    """Tickets escalated to ``queue`` (a level above the first) that someone owns and works on."""
    return (tickets.c.queue == queue) & (tickets.c.level > FIRST_LEVEL) & tickets.c.status.in_(_BEING_WORKED)


_LINE_ORDER = (tickets.c.priority.asc().nulls_last(), tickets.c.opened_at.asc(), tickets.c.number.asc())


def _line_key(row: dict[str, Any]) -> tuple[bool, int, datetime, str]:
    """_LINE_ORDER in Python, to merge the line's two parts."""
    return row["priority"] is None, row["priority"] or 0, row["opened_at"], row["number"]


async def queue_line(conn: AsyncConnection, queue: str, limit: int) -> list[dict[str, Any]]:
    """The line of ``queue``, most urgent first, then oldest first: its unclaimed tickets, and the
    tickets escalated to it that someone already owns (the level sees everything sent to it;
    :func:`take_head_of_line` takes only unclaimed ones)."""
    waiting = select(tickets).where(_waiting_in(queue)).order_by(*_LINE_ORDER).limit(limit)
    owned = select(tickets).where(_escalated_and_owned_in(queue)).order_by(*_LINE_ORDER).limit(limit)
    # Two reads along the queue line's index, merged here (each stops at ``limit``; one query with an OR
    # between them could not).
    rows = [dict(r._mapping) for query in (waiting, owned) for r in await conn.execute(query)]
    return sorted(rows, key=_line_key)[:limit]


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
    is_waiting = ticket_population.c.status == Status.OPEN.value
    depths = (
        select(ticket_population.c.queue, func.sum(case((is_waiting, ticket_population.c.tickets), else_=0)))
        .where(ticket_population.c.queue != NO_QUEUE)
        .group_by(ticket_population.c.queue)
        .order_by(ticket_population.c.queue)
    )
    rows = (await conn.execute(depths)).all()
    oldest = await oldest_waiting(conn)
    return [{"queue": queue, "depth": depth, "oldest_opened_at": oldest.get(queue)} for queue, depth in rows]


async def number_of(conn: AsyncConnection, ticket_id: Any) -> str:
    return (await conn.execute(select(tickets.c.number).where(tickets.c.ticket_id == ticket_id))).scalar_one()
