"""The outbox relay: the only path from the ticket log to Kafka.

It tails ``ticket_events`` in position order from where it last stopped,
publishes each event as its contract message (with the event id it was stored
under, so a republished event is recognisably the same) keyed by ticket id,
waits until Kafka has acknowledged the whole batch, and only then saves the
new position. A crash between publishing and saving republishes that batch
after the restart: consumers deduplicate by event id. Nothing is ever skipped
(positions become visible in commit order; see ``adapters/event_store.py``).

Each message is put together from the stored columns, the data spliced in
as the JSON text it was stored as (see :func:`message_value`), and published
as those bytes: parsing the log back into models only to dump them again took
about a third of the relay's time.

It wakes as soon as this process appended, and otherwise looks every poll
interval for what other replicas appended. On PostgreSQL one replica relays
at a time (it holds an advisory lock); the others stand by, so the topic does
not carry every event once per replica. The lock belongs to a database
session, which can end under the relay (a database restart, a killed
backend, a network cut): so the leader checks it still holds the lock before
every round, and stands by again when it does not. Between a check and the
save a lock can still be lost, so the saved position only ever moves forward:
a relay that finds it already further on has been overtaken by another leader,
and stands by too (see :func:`event_store.advance_relay_position`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Row, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.topics import TICKET_EVENTS_TOPIC
from runtime.kafka import Encoded, Publisher
from runtime.logs import get_logger
from runtime.waits import wait_set
from services.tickets.adapters import event_store
from services.tickets.adapters.database import TicketDatabase
from services.tickets.metrics import RELAY_LAG, RELAY_PUBLISHED

log = get_logger("tickets.relay")

RELAY_NAME = "ticket-events"
LEADER_LOCK_KEY = 0x4844_7265_6C61  # "HDrela": one advisory lock id for the ticket relay
LAG_EVERY_S = 1.0


class Relay:
    def __init__(
        self, db: TicketDatabase, publisher: Publisher, *, batch_size: int = 500, poll_interval_s: float = 0.05
    ) -> None:
        self._db = db
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._appended = asyncio.Event()
        self._lag_measured_at = 0.0

    def wake(self) -> None:
        """Called after this process committed new events."""
        self._appended.set()

    async def run(self) -> None:
        while True:
            try:
                async with self._leadership() as still_leader:
                    await self._relay_while(still_leader)
            except LeadershipLost as lost:
                log.warning("relay leadership lost; standing by", reason=str(lost))

    async def _relay_while(self, still_leader: Callable[[], Awaitable[None]]) -> None:
        async with self._db.reader.connect() as conn:
            # Read afresh on every (re)gained leadership: another leader may have moved it meanwhile.
            position = await event_store.relay_position(conn, RELAY_NAME)
        log.info("relay started", position=position)
        while True:
            await still_leader()
            # Clear before reading: an append committed after this line wakes the wait below.
            self._appended.clear()
            published, position = await self.relay_once(position)
            if published < self._batch_size:
                await self._wait()

    async def relay_once(self, position: int) -> tuple[int, int]:
        """Publish the next batch after ``position``; returns (events published, new position).

        Raises :class:`LeadershipLost` when another relay had already saved a position this far.
        """
        async with self._db.reader.connect() as conn:
            batch = await event_store.read_rows_after(conn, position, self._batch_size)
            await self._measure_lag(conn, position)
        if not batch:
            return 0, position
        # Pipelined; returns once Kafka acknowledged them all. The idempotent producer keeps each
        # partition in order even when it retries, so each ticket's events arrive in log order.
        await self._publisher.publish_encoded(
            TICKET_EVENTS_TOPIC,
            [Encoded(message_value(event), str(event.ticket_id), message_headers(event)) for event in batch],
        )
        position = batch[-1].position
        async with self._db.writer.begin() as conn:
            advanced = await event_store.advance_relay_position(conn, RELAY_NAME, position)
        if not advanced:
            raise LeadershipLost(f"another relay already saved a position at or past {position}")
        RELAY_PUBLISHED.inc(len(batch))
        log.debug("ticket events relayed", events=len(batch), position=position)
        return len(batch), position

    async def _wait(self) -> None:
        await wait_set(self._appended, self._poll_interval_s)

    async def _measure_lag(self, conn: AsyncConnection, position: int) -> None:
        now = time.monotonic()
        if now - self._lag_measured_at >= LAG_EVERY_S:
            self._lag_measured_at = now
            RELAY_LAG.set(await event_store.count_after(conn, position))

    @asynccontextmanager
    async def _leadership(self) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        """Hold the relay's advisory lock while relaying (PostgreSQL; wait for it on a standby).

        Gives the check to make before each round: it raises :class:`LeadershipLost`
        once the lock's session is gone. SQLite has one process: always the leader.
        """
        if not self._db.is_postgres:
            yield _always_leader
            return
        async with self._db.writer.connect() as conn:
            announced = False
            while not (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK_KEY})).scalar():
                await conn.commit()
                if not announced:
                    log.info("another replica is relaying; standing by")
                    announced = True
                await asyncio.sleep(1.0)
            await conn.commit()

            async def still_leader() -> None:
                try:
                    held = (await conn.execute(_HOLDS_LOCK, _LOCK_IDS)).scalar()
                    await conn.commit()
                except DBAPIError as exc:
                    raise LeadershipLost(f"the session holding the relay lock ended: {exc.orig!r}") from exc
                if not held:
                    raise LeadershipLost("this session no longer holds the relay lock")

            try:
                yield still_leader
            finally:
                # The lock belongs to the session: release it before the connection goes back to the pool.
                await conn.invalidate()


class LeadershipLost(Exception):
    """This replica is no longer the one relaying: its lock's session ended, or another relay got further."""


async def _always_leader() -> None:
    return None


# Whether this very session holds the relay's lock: a bigint advisory key is stored as
# classid (its high 32 bits) and objid (its low 32 bits), with objsubid 1.
_HOLDS_LOCK = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND classid = :hi AND objid = :lo AND objsubid = 1)"
)
_LOCK_IDS = {"hi": LEADER_LOCK_KEY >> 32, "lo": LEADER_LOCK_KEY & 0xFFFF_FFFF}


# --- the stored event as its contract message ------------------------------------
# The log already holds what the message says, the data as the JSON its model gave
# when the event was appended: the message is put together from it, not parsed into
# a model and dumped again.


def message_value(event: Row[Any]) -> bytes:
    """The message, byte for byte what ``model_dump_json`` of the event's envelope gives."""
    envelope = to_json(  # pydantic's own serialiser: ids and times come out as a model would write them
        {
            "event_id": event.event_id,
            "type": event.type,
            "schema_version": event.schema_version,
            "ticket_id": event.ticket_id,
            "occurred_at": event.occurred_at,
            "correlation_id": event.correlation_id,
            "causation_id": event.causation_id,
        }
    )
    return envelope[:-1] + b',"data":' + event.data.encode() + b"}"


def message_headers(event: Row[Any]) -> dict[str, str]:
    """The headers ``runtime.kafka.headers_for`` gives the message (a test holds the two together)."""
    headers = {
        "content-type": "application/json",
        "message-type": event.type,
        "schema-version": str(event.schema_version),
        "correlation-id": event.correlation_id,
    }
    if event.causation_id:
        headers["causation-id"] = event.causation_id
    return headers
