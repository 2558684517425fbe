"""Gauges of the ticket population, read from the read model every few seconds.

Counters say what happened; these say what is: tickets by status, priority and
queue, and how long the oldest unclaimed ticket of each queue has waited. The
dashboard's "tickets by status" and "queue depth and age" panels read them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from prometheus_client import Gauge

from services.tickets.adapters import read_model
from services.tickets.adapters.database import TicketDatabase

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
    # From the population table the writes keep (a few hundred rows), not by counting every ticket:
    # at a million tickets the count was a seq scan of 0.7 s every interval.
    now = now or datetime.now(UTC)
    async with db.reader.connect() as conn:
        kinds = await read_model.population(conn)
        oldest = await read_model.oldest_waiting(conn)
    TICKETS.clear()  # a combination that emptied must read 0, not its last value
    for status, priority, queue, n in kinds:
        TICKETS.labels(status, str(priority or "none"), queue or "none").set(n)
    QUEUE_OLDEST_AGE.clear()
    for queue, opened_at in oldest.items():
        QUEUE_OLDEST_AGE.labels(queue).set(max(0.0, (now - opened_at).total_seconds()))


def census_worker(db: TicketDatabase, interval_s: float = 15.0):  # type: ignore[no-untyped-def]
    async def run() -> None:
        while True:
            await take_census(db)
            await asyncio.sleep(interval_s)

    return run
