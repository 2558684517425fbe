"""Gauges of the ticket population, read from the read model every few seconds.

Counters say what happened; these say what is: tickets by status, priority and
queue, and how long the oldest unclaimed ticket of each queue has waited. The
dashboard's "tickets by status" and "queue depth and age" panels read them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from prometheus_client import Gauge
from sqlalchemy import func, select

from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.read_model import tickets
from services.tickets.domain import Status

TICKETS = Gauge(
    "helpdesk_tickets",
    "Tickets in the read model by status, priority and queue.",
    ["status", "priority", "queue"],
)
QUEUE_OLDEST_AGE = Gauge(
    "helpdesk_queue_oldest_ticket_age_seconds",
    "Age of the oldest unclaimed ticket waiting in each queue.",
    ["queue"],
)


async def take_census(db: TicketDatabase, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    counts = select(tickets.c.status, tickets.c.priority, tickets.c.queue, func.count()).group_by(
        tickets.c.status, tickets.c.priority, tickets.c.queue
    )
    oldest = (
        select(tickets.c.queue, func.min(tickets.c.opened_at))
        .where(tickets.c.status == Status.OPEN.value, tickets.c.queue.is_not(None))
        .group_by(tickets.c.queue)
    )
    async with db.reader.connect() as conn:
        count_rows = (await conn.execute(counts)).all()
        oldest_rows = (await conn.execute(oldest)).all()
    TICKETS.clear()  # a combination that emptied must read 0, not its last value
    for status, priority, queue, n in count_rows:
        TICKETS.labels(status, str(priority or "none"), queue or "none").set(n)
    QUEUE_OLDEST_AGE.clear()
    for queue, opened_at in oldest_rows:
        if opened_at is not None:
            opened = opened_at if opened_at.tzinfo else opened_at.replace(tzinfo=UTC)
            QUEUE_OLDEST_AGE.labels(queue).set(max(0.0, (now - opened).total_seconds()))


def census_worker(db: TicketDatabase, interval_s: float = 15.0):  # type: ignore[no-untyped-def]
    async def run() -> None:
        while True:
            await take_census(db)
            await asyncio.sleep(interval_s)

    return run
