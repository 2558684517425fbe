"""SLA deadlines from escalation kept per ticket: the newest message wins, redelivery changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.envelope import new_envelope
from contracts.sla import Deadline, SlaDeadlinesChanged, SlaDeadlinesChangedData
from runtime.consumer import Delivery, PoisonMessage
from services.tickets.adapters import deadlines
from services.tickets.adapters.database import TicketDatabase
from services.tickets.handlers import record_deadlines

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
TICKET = uuid.UUID("00000000-0000-4000-8000-0000000000aa")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[TicketDatabase]:
    database = TicketDatabase(database_url)
    await database.create_tables()
    yield database
    await database.close()


def published(state: str, at: datetime, ticket_id: uuid.UUID | None = TICKET) -> SlaDeadlinesChanged:
    data = SlaDeadlinesChangedData(
        number="HD-1",
        policy="gold",
        calendar="office",
        deadlines=[Deadline(kind="resolution", due_at=T0 + timedelta(hours=4), state=state)],  # type: ignore[arg-type]
    )
    return new_envelope(SlaDeadlinesChanged, data, ticket_id=ticket_id, occurred_at=at)  # type: ignore[return-value]


def deliveries(*messages: Any) -> list[Delivery[Any]]:
    return [Delivery(m, "topic", 0, offset, None) for offset, m in enumerate(messages)]


async def stored(db: TicketDatabase) -> dict[str, Any] | None:
    async with db.reader.connect() as conn:
        return await deadlines.of_ticket(conn, TICKET)


async def test_the_newest_deadlines_of_a_ticket_win_whatever_order_they_arrive_in(db: TicketDatabase) -> None:
    handle = record_deadlines(db)
    running, met = published("running", T0), published("met", T0 + timedelta(minutes=5))
    await handle(deliveries(met, running))  # one batch, out of order
    assert (await stored(db))["deadlines"][0]["state"] == "met"  # type: ignore[index]
    await handle(deliveries(running))  # an older message redelivered later
    row = await stored(db)
    assert row is not None and row["deadlines"][0]["state"] == "met" and row["event_id"] == met.event_id


async def test_a_newer_message_replaces_the_stored_deadlines(db: TicketDatabase) -> None:
    handle = record_deadlines(db)
    await handle(deliveries(published("running", T0)))
    breached = published("breached", T0 + timedelta(hours=5))
    await handle(deliveries(breached, breached))
    row = await stored(db)
    assert row is not None and (row["deadlines"][0]["state"], row["policy"]) == ("breached", "gold")
    assert row["occurred_at"] == breached.occurred_at


async def test_deadlines_without_a_ticket_id_are_poison(db: TicketDatabase) -> None:
    with pytest.raises(PoisonMessage, match="names no ticket_id"):
        await record_deadlines(db)(deliveries(published("running", T0, ticket_id=None)))
    assert await stored(db) is None
