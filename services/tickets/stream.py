"""The live stream of ticket events for agents' clients: ``GET /v1/stream`` (server-sent events).

Each event of the ticket log goes out as one SSE event: ``id`` is its position
in the log, ``event`` its type, ``data`` the envelope exactly as the relay
publishes it to Kafka. A client that reconnects with ``Last-Event-ID`` (every
EventSource does) gets every matching event after that position, then the live
ones: nothing is skipped, because positions become visible in commit order
(see ``adapters/event_store.py``) and the stream only ever moves past what it
has read. Without ``Last-Event-ID`` the stream starts after the last event
committed when the request arrived.

A stream reads the log only when it may have grown: :class:`LogTail` wakes every
open stream at once when this process appends, and within the poll interval
when another replica does (one cheap query per process, however many streams
are open). A stream holds no database connection while it waits.

Filters: ``?ticket=`` (id or number) and ``?queue=`` (may repeat). An event is
in a queue's stream when its ticket is in that queue when the event is sent
(the read model's current queue), or when the event is the one that moved the
ticket out of it: a ticket routed into a watched queue arrives with its whole
story so far, and one routed or escalated away is seen leaving.
See docs/tickets-stream.md.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint's annotations,
# which name dependency aliases local to stream_router.

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from prometheus_client import Gauge
from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.logs import get_logger
from runtime.problems import Problem, documented
from runtime.waits import wait_set
from services.tickets import auth, customer_view
from services.tickets.adapters import event_store, read_model, repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.relay import message_value

log = get_logger("tickets.stream")

KEEP_ALIVE_S = 15.0  # proxies close idle connections; a comment line keeps this one busy
BATCH = 500
TOKEN_EXPIRED = b'event: token-expired\ndata: {"detail": "the token this stream was opened with has expired"}\n\n'
STREAMS_OPEN = Gauge("helpdesk_ticket_streams_open", "Live ticket event streams (GET /v1/stream) open now.")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: documented(text)
    for code, text in {
        400: "Last-Event-ID is not a log position",
        401: "No valid token",
        403: "A customer asked for queues",
        404: "No such ticket",
        422: "Invalid query parameters: `errors` says where and what",
    }.items()
}


class LogTail:
    """Tells the open streams that the ticket log may have grown, and that the service is stopping.

    A stream takes :meth:`armed` *before* it reads the log, then waits on it: an
    append committed after that read sets the event it holds, so it cannot sleep
    through one.
    """

    def __init__(self, db: TicketDatabase, poll_interval_s: float) -> None:
        self._db = db
        self._poll_interval_s = poll_interval_s
        self._grown = asyncio.Event()
        self._listeners = 0
        self._listening = asyncio.Event()
        self.closed = False

    def appended(self) -> None:
        """Called after this process committed events (and by :meth:`watch` for other replicas')."""
        grown, self._grown = self._grown, asyncio.Event()
        grown.set()

    def armed(self) -> asyncio.Event:
        return self._grown

    def end(self) -> None:
        """End every open stream (clients reconnect to another replica with Last-Event-ID)."""
        self.closed = True
        self.appended()

    async def close(self) -> None:
        """:meth:`end`, as a shut-down hook."""
        self.end()

    async def watch(self) -> None:
        """Worker: while any stream is open, look every poll interval whether another replica appended."""
        head: int | None = None
        while True:
            if not self._listening.is_set():
                head = None  # idle meanwhile: what it was then says nothing now
                await self._listening.wait()
            async with self._db.reader.connect() as conn:
                now = await _head(conn)
            if head is not None and now != head:
                self.appended()
            head = now
            await asyncio.sleep(self._poll_interval_s)

    def listening(self) -> "_Listening":
        return _Listening(self)


class _Listening:
    """Counts a stream as open for as long as the ``with`` lasts."""

    def __init__(self, tail: LogTail) -> None:
        self._tail = tail

    def __enter__(self) -> None:
        self._tail._listeners += 1
        self._tail._listening.set()
        STREAMS_OPEN.inc()

    def __exit__(self, *_exc: object) -> None:
        self._tail._listeners -= 1
        if self._tail._listeners == 0:
            self._tail._listening.clear()
        STREAMS_OPEN.dec()


@dataclass(frozen=True)
class Place:
    """Where a ticket stands now, as the read model says: what filters and visibility look at."""

    queue: str | None
    customer_id: str | None


@dataclass(frozen=True)
class Watch:
    """What a stream sends: the events of ``ticket`` (None: any), in ``queues`` (empty: any)."""

    ticket_id: uuid.UUID | None = None
    queues: frozenset[str] = field(default_factory=frozenset)


def caller_sees(caller: auth.Caller, event: Row[Any], place: Place | None) -> bool:
    """THE one place that decides which events a caller may see on the stream.

    Agents, leads and integrations see every event; a customer only the events
    of their own tickets that customers see (no internal notes, assignments,
    priorities, escalations, flags...), by the rules the rest of the API uses.
    """
    if caller.kind != "customer":
        return True
    if place is None or not auth.may_see(caller, place.customer_id):
        return False
    data = json.loads(event.data) if event.type == "ticket.note_added" else {}
    return customer_view.sees_event(event.type, data)


def stream_router(db: TicketDatabase, tail: LogTail, *, keep_alive_s: float = KEEP_ALIVE_S) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["stream"])
    Who = Annotated[auth.Caller, Depends(auth.authenticated)]

    @router.get(
        "/stream",
        response_class=StreamingResponse,
        responses={
            **ERRORS,
            200: {"description": "Ticket events as they happen", "content": {"text/event-stream": {}}},
        },
    )
    async def ticket_events(
        caller: Who,
        queue: Annotated[
            list[str] | None, Query(description="Only tickets in this queue (repeat for several).")
        ] = None,
        ticket: Annotated[str | None, Query(max_length=100, description="Only this ticket (id or HD-number).")] = None,
        last_event_id: Annotated[
            str | None, Header(description="Resume after this position (sent by EventSource on reconnect).")
        ] = None,
        after: Annotated[
            str | None, Query(alias="last_event_id", description="Resume after this position (when no header).")
        ] = None,
    ) -> StreamingResponse:
        """Ticket events as server-sent events: ``id`` the log position, ``event`` the type, ``data`` the envelope."""
        auth.allow(caller, "read")
        if queue:
            auth.allow(caller, "read_internal")  # queues are the desk's inner workings
        start = _position(last_event_id if last_event_id is not None else after)
        async with db.reader.connect() as conn:
            watch = Watch(await _ticket_to_watch(conn, ticket, caller), frozenset(q for q in queue or [] if q))
            if start is None:
                # Read before the answer's headers go out: whatever the client writes once it
                # sees them lies after this position, and is sent.
                start = await _head(conn)
        events = _events(db, tail, caller, watch, start, keep_alive_s)
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},  # no proxy buffering
        )

    return router


def _position(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.strip().isdigit() or len(value.strip()) > 18:
        raise Problem(
            400, "invalid-last-event-id", "Invalid Last-Event-ID", f"expected a log position like 1234, got {value!r}"
        )
    return int(value)


async def _ticket_to_watch(conn: AsyncConnection, ref: str | None, caller: auth.Caller) -> uuid.UUID | None:
    if ref is None:
        return None
    ticket_id = await repository.find(conn, ref)
    place = (await _places(conn, [ticket_id])).get(ticket_id) if ticket_id else None
    if ticket_id is None or place is None or not auth.may_see(caller, place.customer_id):
        raise Problem(
            404, "ticket-not-found", "No such ticket", f"no ticket {ref!r} (give an id or a number like HD-12)"
        )
    return ticket_id


async def _events(
    db: TicketDatabase, tail: LogTail, caller: auth.Caller, watch: Watch, position: int, keep_alive_s: float
) -> AsyncIterator[bytes]:
    with tail.listening():
        yield b": stream after position %d\n\n" % position
        written_at = time.monotonic()
        while not tail.closed:
            grown = tail.armed()
            batch = await _read(db, watch, position)
            for event in batch.events:
                position = event.position
                if batch.matches(event, watch) and caller_sees(caller, event, batch.places.get(event.ticket_id)):
                    yield _sse(event, caller)
                    written_at = time.monotonic()
            if len(batch.events) == BATCH:
                continue  # more waiting: no sleep
            token_left = _token_left(caller)
            if token_left <= 0:
                # The credential the stream was opened with has ended: so does the stream. The client
                # reconnects with a fresh token and Last-Event-ID, and misses nothing.
                yield TOKEN_EXPIRED
                break
            quiet_for = time.monotonic() - written_at
            if quiet_for >= keep_alive_s:
                yield b": keep-alive\n\n"
                written_at, quiet_for = time.monotonic(), 0.0
            await wait_set(grown, min(keep_alive_s - quiet_for, token_left))
    log.debug("stream ended", position=position)


def _token_left(caller: auth.Caller) -> float:
    """Seconds until the caller's token expires (API keys do not)."""
    return float("inf") if caller.expires_at is None else caller.expires_at - time.time()


def _sse(event: Row[Any], caller: auth.Caller) -> bytes:
    # The stored JSON holds no raw newline (JSON escapes them), so the data fits one ``data:`` line.
    value = message_value(event)
    if caller.kind == "customer":
        envelope = json.loads(value)
        envelope["data"] = customer_view.event_data(event.type, envelope["data"])
        value = json.dumps(envelope, separators=(",", ":")).encode()
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.position, event.type.encode(), value)


# --- reading the log and the read model for a stream -----------------------------------


@dataclass(frozen=True)
class Batch:
    events: Sequence[Row[Any]]
    places: dict[uuid.UUID, Place]
    # position of an event that moved its ticket to another queue -> the queue it left
    left: dict[int, str | None]

    def matches(self, event: Row[Any], watch: Watch) -> bool:
        if watch.ticket_id is not None and event.ticket_id != watch.ticket_id:
            return False
        if not watch.queues:
            return True
        place = self.places.get(event.ticket_id)
        return (place is not None and place.queue in watch.queues) or self.left.get(event.position) in watch.queues


async def _read(db: TicketDatabase, watch: Watch, position: int) -> Batch:
    """The next events after ``position`` (of the watched ticket only, if one is watched), and where their tickets are."""
    async with db.reader.connect() as conn:
        if watch.ticket_id is None:
            events = await event_store.read_rows_after(conn, position, BATCH)
        else:
            events = await _ticket_rows_after(conn, watch.ticket_id, position)
        if not events:
            return Batch(events, {}, {})
        places = await _places(conn, {e.ticket_id for e in events})
        moves = [e for e in events if watch.queues and _moved_away(e, places, watch.queues)]
        left = await _queues_left(conn, moves) if moves else {}
    return Batch(events, places, left)


async def _head(conn: AsyncConnection) -> int:
    """The position of the last event committed (0 for an empty log)."""
    return (await conn.execute(select(func.max(event_store.ticket_events.c.position)))).scalar_one() or 0


async def _ticket_rows_after(conn: AsyncConnection, ticket_id: uuid.UUID, position: int) -> Sequence[Row[Any]]:
    """One ticket's events after ``position``, in log order (its own few rows, not the whole log filtered)."""
    events = event_store.ticket_events
    rows = await conn.execute(
        select(events)
        .where(events.c.ticket_id == ticket_id, events.c.position > position)
        .order_by(events.c.position)
        .limit(BATCH)
    )
    return rows.all()


async def _places(conn: AsyncConnection, ticket_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Place]:
    tickets = read_model.tickets
    rows = await conn.execute(
        select(tickets.c.ticket_id, tickets.c.queue, tickets.c.customer_id).where(
            tickets.c.ticket_id.in_(list(ticket_ids))
        )
    )
    return {row.ticket_id: Place(row.queue, row.customer_id) for row in rows}


def _moved_away(event: Row[Any], places: dict[uuid.UUID, Place], queues: frozenset[str]) -> bool:
    """Could this event have taken its ticket out of a watched queue? (It names a queue; the ticket is elsewhere now.)"""
    place = places.get(event.ticket_id)
    if place is not None and place.queue in queues:
        return False
    return '"queue":' in event.data and json.loads(event.data).get("queue") is not None


async def _queues_left(conn: AsyncConnection, moves: Sequence[Row[Any]]) -> dict[int, str | None]:
    """For each event that moved a ticket, the queue the ticket was in just before it."""
    streams = await event_store.load_stream_data(conn, {e.ticket_id for e in moves})
    left: dict[int, str | None] = {}
    for event in moves:
        before = None
        for data in streams.get(event.ticket_id, []):
            if data.version >= event.version:  # type: ignore[attr-defined]
                break
            before = getattr(data, "queue", None) or before
        left[event.position] = before
    return left
