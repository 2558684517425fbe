"""Escalation over the real broker and both databases: a ticket nobody claims
escalates once per level; a claimed one never; a restart loses and doubles nothing.

The service runs in-process with a clock the test moves, so a 15-minute
deadline passes in an instant.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.commands import EscalateTicket
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import Channel, CustomerProfile
from contracts.notifications import NotificationRequested
from contracts.registry import parse_message
from contracts.tickets import (
    TicketClaimed,
    TicketClaimedData,
    TicketEscalated,
    TicketEscalatedData,
    TicketOpened,
    TicketOpenedData,
    TicketRouted,
    TicketRoutedData,
)
from contracts.topics import (
    NOTIFICATION_REQUESTS,
    ESCALATION_COMMANDS,
    TICKET_EVENTS_TOPIC,
    Topic,
)
from runtime.settings import CommonSettings
from services.escalation.bootstrap import build
from services.escalation.config import Settings
from services.escalation.domain.message_ids import (
    escalate_command_id,
    escalation_notification_id,
)
from tests.support.tokens import development_bearer

UNCLAIMED_AFTER = timedelta(seconds=60)

LEAD = development_bearer("lead-1", ("agent", "lead"))  # a team lead's token the services accept


class MovableClock:
    def __init__(self) -> None:
        self._now = datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> None:
        self._now += by


class TopicReader:
    """Everything published on a topic since it was created, decoded."""

    def __init__(self, bootstrap: str, name: str) -> None:
        self._consumer = AIOKafkaConsumer(
            name, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        self.messages: list[Envelope[Any]] = []

    async def __aenter__(self) -> Self:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def read_for(self, seconds: float) -> list[Envelope[Any]]:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            batches = await self._consumer.getmany(timeout_ms=100)
            self.messages.extend(parse_message(r.value) for records in batches.values() for r in records)
        return self.messages

    async def wait_for(self, predicate: Callable[[Envelope[Any]], bool], count: int = 1, timeout: float = 20) -> list:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = [m for m in await self.read_for(0.1) if predicate(m)]
            if len(found) >= count:
                return found
        raise AssertionError(f"expected {count} matching message(s) within {timeout}s, saw {self.messages}")


@asynccontextmanager
async def escalation(
    kafka_bootstrap: str, topic_prefix: str, database_url: str, clock: MovableClock
) -> AsyncIterator[httpx.AsyncClient]:
    """The service in-process, with its HTTP API as a client."""
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10
    )
    settings = Settings(
        database_url=database_url, unclaimed_after_s=UNCLAIMED_AFTER.total_seconds(), timer_interval_s=0.05
    )
    service = build(common, settings, clock=clock)
    transport = httpx.ASGITransport(app=service.app)
    async with service._lifespan(service.app), httpx.AsyncClient(transport=transport, base_url="http://t", headers=LEAD) as client:
        yield client


@asynccontextmanager
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def publish(p: AIOKafkaProducer, prefix: str, topic: Topic, *events: Envelope[Any]) -> None:
    for event in events:
        value, key = event.model_dump_json().encode(), str(event.ticket_id).encode()
        await p.send_and_wait(topic.qualified(prefix), value, key=key)


def opened(ticket_id: uuid.UUID, number: str, at: datetime) -> Envelope[Any]:
    data = TicketOpenedData(
        number=number, version=1, channel=Channel.EMAIL, channel_message_id=f"m-{number}", reported_at=at,
        subject="Printer on fire", description="", customer=CustomerProfile(identified=False, email="c@example.com"),
    )
    return new_envelope(TicketOpened, data, ticket_id=ticket_id, occurred_at=at, correlation_id=f"corr-{number}")


def routed(ticket_id: uuid.UUID, number: str, queue: str) -> Envelope[Any]:
    data = TicketRoutedData(number=number, version=3, queue=queue, rule="hardware", reason="printer")
    return new_envelope(TicketRouted, data, ticket_id=ticket_id)


def escalated(ticket_id: uuid.UUID, number: str, level: int, queue: str, at: datetime) -> Envelope[Any]:
    data = TicketEscalatedData(number=number, version=3 + level, level=level, queue=queue, reason="unclaimed")
    return new_envelope(TicketEscalated, data, ticket_id=ticket_id, occurred_at=at)


Deadlines = list[dict[str, Any]]


async def deadlines_until(
    client: httpx.AsyncClient, ticket_id: uuid.UUID, check: Callable[[Deadlines], bool]
) -> Deadlines:
    """The ticket's deadlines from the HTTP API, once ``check`` accepts them (at most 20 s)."""
    end = time.monotonic() + 20
    while True:
        response = await client.get(f"/v1/tickets/{ticket_id}/deadlines")
        assert response.status_code == 200
        found = response.json()["deadlines"]
        if check(found):
            return found
        assert time.monotonic() < end, f"deadlines of {ticket_id} never matched, last: {found}"
        await asyncio.sleep(0.05)


def is_pending_at(level: int) -> Callable[[Deadlines], bool]:
    return lambda found: len(found) == 1 and found[0]["state"] == "pending" and found[0]["level"] == level


def about(ticket_id: uuid.UUID, model: type[Envelope[Any]]) -> Callable[[Envelope[Any]], bool]:
    return lambda m: isinstance(m, model) and m.ticket_id == ticket_id


async def test_an_unclaimed_ticket_escalates_once_per_level_until_the_top(
    kafka_bootstrap: str, topic_prefix: str, database_url: str
) -> None:
    clock, ticket = MovableClock(), uuid.uuid4()
    async with (
        escalation(kafka_bootstrap, topic_prefix, database_url, clock) as client,
        producer(kafka_bootstrap) as p,
        TopicReader(kafka_bootstrap, ESCALATION_COMMANDS.qualified(topic_prefix)) as commands,
        TopicReader(kafka_bootstrap, NOTIFICATION_REQUESTS.qualified(topic_prefix)) as requests,
    ):
        opening = opened(ticket, "HD-12", clock.now())
        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, opening, routed(ticket, "HD-12", "hardware"))
        routed_and_pending = lambda f: is_pending_at(1)(f) and f[0]["queue"] == "hardware"
        [deadline] = await deadlines_until(client, ticket, routed_and_pending)
        assert deadline["escalates_to"] == 2
        assert await commands.read_for(0.3) == []  # not due yet: nothing sent

        clock.advance(UNCLAIMED_AFTER + timedelta(seconds=1))
        [command] = await commands.wait_for(about(ticket, EscalateTicket))
        [request] = await requests.wait_for(about(ticket, NotificationRequested))
        assert command.event_id == escalate_command_id(ticket, 2)
        assert (command.data.level, command.data.queue) == (2, "L2-specialists")
        assert command.correlation_id == "corr-HD-12"
        assert request.event_id == escalation_notification_id(ticket, 2)
        assert (request.data.method, request.data.template, request.data.subject) == (
            "email", "ticket_escalated", "[HD-12] escalated to L2")
        assert (request.data.recipient.kind, request.data.recipient.email) == ("level", "l2-oncall@helpdesk.example")
        await deadlines_until(client, ticket, lambda f: [d["state"] for d in f] == ["fired"])
        assert len(await commands.read_for(0.5)) == 1  # ten more timer passes: still one command
        assert len(await requests.read_for(0.1)) == 1

        # The ticket service records the escalation; level 2's clock starts from then.
        to_l2 = escalated(ticket, "HD-12", 2, "L2-specialists", clock.now())
        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, to_l2)
        await deadlines_until(client, ticket, is_pending_at(2))
        clock.advance(UNCLAIMED_AFTER + timedelta(seconds=1))
        await commands.wait_for(about(ticket, EscalateTicket), count=2)
        assert [c.data.level for c in commands.messages] == [2, 3]

        # Level 3 is the top: nothing more ever fires.
        to_l3 = escalated(ticket, "HD-12", 3, "L3-engineering", clock.now())
        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, to_l3)
        await deadlines_until(client, ticket, lambda f: f == [])
        clock.advance(UNCLAIMED_AFTER * 10)
        assert len(await commands.read_for(0.5)) == 2
        assert [r.data.recipient.email for r in await requests.read_for(0.1)] == [
            "l2-oncall@helpdesk.example", "l3-oncall@helpdesk.example"]


async def test_a_claimed_ticket_never_escalates(kafka_bootstrap: str, topic_prefix: str, database_url: str) -> None:
    clock, claimed, unclaimed = MovableClock(), uuid.uuid4(), uuid.uuid4()
    async with (
        escalation(kafka_bootstrap, topic_prefix, database_url, clock) as client,
        producer(kafka_bootstrap) as p,
        TopicReader(kafka_bootstrap, ESCALATION_COMMANDS.qualified(topic_prefix)) as commands,
        TopicReader(kafka_bootstrap, NOTIFICATION_REQUESTS.qualified(topic_prefix)) as requests,
    ):
        claim_data = TicketClaimedData(number="HD-1", version=2, agent_id="agent-7")
        claim = new_envelope(TicketClaimed, claim_data, ticket_id=claimed)
        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, opened(claimed, "HD-1", clock.now()), claim,
                      opened(unclaimed, "HD-2", clock.now()))
        await deadlines_until(client, unclaimed, is_pending_at(1))
        await deadlines_until(client, claimed, lambda f: f == [])

        clock.advance(UNCLAIMED_AFTER * 3)
        # The unclaimed ticket shows the timer ran past both deadlines; the claimed one sent nothing.
        await commands.wait_for(about(unclaimed, EscalateTicket))
        await commands.read_for(0.5)
        assert [c.ticket_id for c in commands.messages] == [unclaimed]
        assert [r.ticket_id for r in await requests.read_for(0.1)] == [unclaimed]


async def test_a_restart_between_opening_and_deadline_loses_nothing_and_doubles_nothing(
    kafka_bootstrap: str, topic_prefix: str, database_url: str
) -> None:
    clock, ticket = MovableClock(), uuid.uuid4()
    event = opened(ticket, "HD-7", clock.now())
    async with (
        producer(kafka_bootstrap) as p,
        TopicReader(kafka_bootstrap, ESCALATION_COMMANDS.qualified(topic_prefix)) as commands,
    ):
        async with escalation(kafka_bootstrap, topic_prefix, database_url, clock) as client:
            await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, event)
            await deadlines_until(client, ticket, is_pending_at(1))

        # Down while the deadline passes; a new process on the same database picks it up.
        clock.advance(UNCLAIMED_AFTER + timedelta(seconds=1))
        async with escalation(kafka_bootstrap, topic_prefix, database_url, clock) as client:
            await commands.wait_for(about(ticket, EscalateTicket))
            await deadlines_until(client, ticket, lambda f: [d["state"] for d in f] == ["fired"])
            await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, event)  # the opening redelivered
            await commands.read_for(0.5)

        # And once more: a fired deadline stays fired across a restart.
        async with escalation(kafka_bootstrap, topic_prefix, database_url, clock) as client:
            await deadlines_until(client, ticket, lambda f: [d["state"] for d in f] == ["fired"])
            await commands.read_for(0.5)
        assert [(c.ticket_id, c.data.level) for c in commands.messages] == [(ticket, 2)]
