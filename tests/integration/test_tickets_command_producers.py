"""Commands are trusted by their producer's topic, not by their type: the ticket service over the real broker.

Each producer has a command topic of its own (Kafka's ACLs let only it write
there: tests/deploy/test_kafka_sasl.py); a command type its producer may not
send is dead-lettered as ``forbidden`` and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from contracts.commands import (
    AssignTicket,
    AssignTicketData,
    EscalateTicket,
    EscalateTicketData,
    FlagTicket,
    FlagTicketData,
    RouteTicket,
    RouteTicketData,
)
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import Channel, CustomerProfile, IncidentIdentified, IncidentIdentifiedData
from contracts.registry import parse_message
from contracts.topics import (
    DEAD_LETTERS,
    ESCALATION_COMMANDS,
    INCIDENTS_IDENTIFIED,
    NOTIFY_COMMANDS,
    ROUTING_COMMANDS,
    SHARED_COMMANDS,
    Topic,
)
from runtime.service import Service
from runtime.settings import CommonSettings
from services.tickets.adapters import event_store
from services.tickets.adapters.database import TicketDatabase
from services.tickets.bootstrap import build
from services.tickets.config import Settings
from services.tickets.handlers import ticket_id_for
from tests.support.kafka import produce


@dataclass
class Desk:
    service: Service
    db: TicketDatabase
    bootstrap: str
    prefix: str

    async def send(self, topic: Topic, command: Envelope[Any]) -> None:
        await self.service.publisher.publish(topic, command, key=str(command.ticket_id))

    async def types(self, ticket_id: uuid.UUID) -> list[str]:
        async with self.db.reader.connect() as conn:
            return [e.message.type for e in await event_store.read_after(conn, 0, 1000) if e.message.ticket_id == ticket_id]

    async def until_types(self, ticket_id: uuid.UUID, wanted: list[str], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while (found := await self.types(ticket_id)) != wanted:
            assert time.monotonic() < deadline, f"{found} is not {wanted} after {timeout}s"
            await asyncio.sleep(0.05)


@pytest.fixture
async def desk(kafka_bootstrap: str, topic_prefix: str, sqlite_database: str) -> AsyncIterator[Desk]:
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10
    )
    service = build(common, Settings(database_url=sqlite_database, relay_poll_interval_ms=20))
    async with service._lifespan(service.app):
        db = TicketDatabase(sqlite_database)
        try:
            yield Desk(service, db, kafka_bootstrap, topic_prefix)
        finally:
            await db.close()


async def open_ticket(desk: Desk, message_id: str) -> uuid.UUID:
    data = IncidentIdentifiedData(
        channel=Channel.WEB,
        channel_message_id=message_id,
        received_at=datetime.now(UTC),
        subject="Printer offline",
        customer=CustomerProfile(identified=False, email="ops@example.com"),
    )
    incident = new_envelope(IncidentIdentified, data)
    await desk.service.publisher.publish(INCIDENTS_IDENTIFIED, incident, key=data.partition_key)
    ticket_id = ticket_id_for(data)
    await desk.until_types(ticket_id, ["ticket.opened"])
    return ticket_id


def route(ticket_id: uuid.UUID, event_id: uuid.UUID | None = None) -> Envelope[Any]:
    data = RouteTicketData(priority=2, priority_rule="r", priority_reason="x", queue="printers", queue_rule="r",
                           queue_reason="x")  # fmt: skip
    return new_envelope(RouteTicket, data, ticket_id=ticket_id, event_id=event_id)


def escalate(ticket_id: uuid.UUID) -> Envelope[Any]:
    data = EscalateTicketData(level=2, queue="L2", reason="no claim", deadline=datetime.now(UTC))
    return new_envelope(EscalateTicket, data, ticket_id=ticket_id)


def assign(ticket_id: uuid.UUID, agent_id: str = "mallory") -> Envelope[Any]:
    return new_envelope(AssignTicket, AssignTicketData(agent_id=agent_id, strategy="direct", reason="me"),
                        ticket_id=ticket_id)  # fmt: skip


def flag(ticket_id: uuid.UUID, event_id: uuid.UUID | None = None) -> Envelope[Any]:
    data = FlagTicketData(flag="escalated", reason="paged L2", raised_by="notify")
    return new_envelope(FlagTicket, data, ticket_id=ticket_id, event_id=event_id)


async def test_notify_may_only_flag_what_else_it_sends_is_dead_lettered_as_forbidden_and_changes_nothing(
    desk: Desk,
) -> None:
    ticket_id = await open_ticket(desk, "printer-1")
    refused = [escalate(ticket_id), assign(ticket_id), route(ticket_id)]
    for command in refused:
        await desk.send(NOTIFY_COMMANDS, command)
    await desk.send(NOTIFY_COMMANDS, flag(ticket_id))
    await desk.until_types(ticket_id, ["ticket.opened", "ticket.flagged"])

    letters = [(headers, parse_message(value)) for headers, value in await dead_letters(desk, 3)]
    assert sorted(m.event_id for _, m in letters) == sorted(c.event_id for c in refused)  # the commands themselves
    notify_topic = NOTIFY_COMMANDS.qualified(desk.prefix)
    for headers, message in letters:
        assert headers["dlt.kind"] == "forbidden"
        assert headers["dlt.origin.topic"] == notify_topic and headers["dlt.service"] == "tickets"
        assert f"{message.type} may not be sent on {notify_topic}" in headers["dlt.reason"]
    await asyncio.sleep(0.3)  # room for a refused command to be applied after all, if it wrongly were
    assert await desk.types(ticket_id) == ["ticket.opened", "ticket.flagged"]


async def test_each_producer_sends_what_it_may_on_its_own_topic(desk: Desk) -> None:
    ticket_id = await open_ticket(desk, "printer-2")
    await desk.send(ROUTING_COMMANDS, route(ticket_id))
    await desk.until_types(ticket_id, ["ticket.opened", "ticket.prioritised", "ticket.routed"])
    await desk.send(ESCALATION_COMMANDS, escalate(ticket_id))
    await desk.send(ESCALATION_COMMANDS, assign(ticket_id, "net-1"))  # the level's on-call agent
    await desk.until_types(
        ticket_id, ["ticket.opened", "ticket.prioritised", "ticket.routed", "ticket.escalated", "ticket.assigned"]
    )
    # Commands sent by a release from before the per-producer topics are still applied.
    await desk.send(SHARED_COMMANDS, flag(ticket_id))
    await desk.until_types(
        ticket_id,
        ["ticket.opened", "ticket.prioritised", "ticket.routed", "ticket.escalated", "ticket.assigned", "ticket.flagged"],
    )


async def test_a_producer_cannot_use_up_the_id_of_another_producers_command(desk: Desk) -> None:
    ticket_id = await open_ticket(desk, "printer-3")
    taken = uuid.uuid5(uuid.NAMESPACE_URL, f"route:{ticket_id}")  # an id routing's would be, worked out beforehand
    await desk.send(NOTIFY_COMMANDS, flag(ticket_id, event_id=taken))
    await desk.until_types(ticket_id, ["ticket.opened", "ticket.flagged"])
    await desk.send(ROUTING_COMMANDS, route(ticket_id, event_id=taken))
    await desk.until_types(ticket_id, ["ticket.opened", "ticket.flagged", "ticket.prioritised", "ticket.routed"])


async def test_an_assignment_to_a_malformed_agent_id_is_dead_lettered_as_invalid(desk: Desk) -> None:
    ticket_id = await open_ticket(desk, "printer-4")
    command = assign(ticket_id).model_dump(mode="json")
    command["data"]["agent_id"] = "alice\r\nX-Evil: 1"
    value = json.dumps(command).encode()
    await produce(desk.bootstrap, ESCALATION_COMMANDS.qualified(desk.prefix), value, str(ticket_id).encode())
    [(headers, _)] = await dead_letters(desk, 1)
    assert headers["dlt.kind"] == "invalid" and "agent_id" in headers["dlt.reason"]
    assert await desk.types(ticket_id) == ["ticket.opened"]


async def dead_letters(desk: Desk, count: int, timeout: float = 20) -> list[tuple[dict[str, str], bytes]]:
    """(headers, value) of the first ``count`` dead letters (waits for them)."""
    consumer = AIOKafkaConsumer(
        DEAD_LETTERS.qualified(desk.prefix), bootstrap_servers=desk.bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None,
    )  # fmt: skip
    await consumer.start()
    found: list[tuple[dict[str, str], bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < count:
            assert time.monotonic() < deadline, f"{len(found)} dead letters, not {count}, after {timeout}s"
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found += [({k: v.decode() for k, v in r.headers}, r.value) for r in records]
    finally:
        await consumer.stop()
    return found
