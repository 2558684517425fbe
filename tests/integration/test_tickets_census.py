"""The ticket population gauges read what the read model holds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters import read_model
from services.tickets.adapters.read_model import tickets
from services.tickets.census import take_census


def _row(number: str, status: str, priority: int | None, queue: str | None, opened_at: datetime) -> dict:
    return {
        "ticket_id": uuid.uuid4(), "number": number, "version": 1, "status": status, "subject": "s",
        "description": "", "channel": "web", "channel_message_id": number, "customer": {}, "components": [],
        "priority": priority, "queue": queue, "level": 1, "assignee": None, "opened_at": opened_at,
        "updated_at": opened_at, "resolution": None, "resolved_by": None, "flags": [], "search_text": "s",
    }


async def test_tickets_are_counted_by_status_priority_and_queue_and_the_oldest_wait_is_measured(
    database_url: str,
) -> None:
    db = TicketDatabase(database_url)
    await db.create_tables()
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    rows = [
        _row("HD-1", "open", 2, "L1", now - timedelta(minutes=30)),
        _row("HD-2", "open", 2, "L1", now - timedelta(minutes=5)),
        _row("HD-3", "resolved", 3, "L1", now - timedelta(hours=2)),
        _row("HD-4", "open", None, None, now),
    ]
    try:
        async with db.writer.begin() as conn:
            columns = {c.name for c in tickets.c}
            # As the repository writes them: the rows and the population counts the census reads.
            await read_model.insert_rows(conn, [{k: v for k, v in r.items() if k in columns} for r in rows])
        await take_census(db, now=now)
    finally:
        await db.close()

    def sample(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    assert sample("helpdesk_tickets", status="open", priority="2", queue="L1") == 2
    assert sample("helpdesk_tickets", status="resolved", priority="3", queue="L1") == 1
    assert sample("helpdesk_tickets", status="open", priority="none", queue="none") == 1
    assert sample("helpdesk_queue_oldest_ticket_age_seconds", queue="L1") == 30 * 60
