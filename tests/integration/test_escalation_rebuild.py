"""Rebuilding the SLA clocks from the ticket events topic (``python -m services.escalation.rebuild``) over the real
broker and both databases: history replayed sends nothing, breaches long past are recorded as handled, a clock
due later is left running, the service's group goes on after the replayed events, and the service then sends
nothing about old tickets."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.envelope import new_envelope
from contracts.tickets import TicketClaimed, TicketClaimedData, TicketResolved, TicketResolvedData
from contracts.topics import NOTIFICATION_REQUESTS, ESCALATION_COMMANDS, TICKET_EVENTS_TOPIC
from devtools.lag import group_lag
from runtime.settings import CommonSettings
from services.escalation.adapters.store import DeadlineStore
from services.escalation.bootstrap import build, escalation_policy
from services.escalation.config import Settings
from services.escalation.domain.deadline import DeadlineState
from services.escalation.rebuild import GROUP, ServiceRunning, rebuild
from tests.integration.test_escalation_service import (
    MovableClock,
    TopicReader,
    escalated,
    opened,
    producer,
    publish,
)

POLICIES = """\
default_calendar: 24x7
policies:
  - name: everything
    first_response: 10m
    resolution: 4h
    warn_at_percent: [50]
"""
DAYS_AGO = timedelta(days=3)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    (tmp_path / "sla.yaml").write_text(POLICIES)
    return Settings(database_url=database_url, policies_file=tmp_path / "sla.yaml", timer_interval_s=0.05)


def claimed(ticket: uuid.UUID, at: datetime) -> Any:
    return new_envelope(
        TicketClaimed, TicketClaimedData(number="HD-1", version=5, agent_id="agent-7"), ticket_id=ticket, occurred_at=at
    )


def resolved(ticket: uuid.UUID, at: datetime) -> Any:
    data = TicketResolvedData(number="HD-1", version=9, resolution="fixed", resolved_by="agent-7")
    return new_envelope(TicketResolved, data, ticket_id=ticket, occurred_at=at)


async def test_a_rebuild_replays_history_sending_nothing_and_the_service_then_sends_nothing_about_old_tickets(
    kafka_bootstrap: str, topic_prefix: str, settings: Settings
) -> None:
    clock = MovableClock()
    past = clock.now() - DAYS_AGO
    late, climbed, fresh = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    history = [
        # Claimed at once, never resolved: its resolution target passed days ago (the version before sent that).
        opened(late, "HD-1", past),
        claimed(late, past + timedelta(minutes=5)),
        # Unclaimed past its first response, escalated to L2, claimed and resolved there: the replay passes
        # through "unclaimed, due three days ago".
        opened(climbed, "HD-2", past),
        escalated(climbed, "HD-2", 2, "L2-specialists", past + timedelta(minutes=10)),
        claimed(climbed, past + timedelta(minutes=20)),
        resolved(climbed, past + timedelta(hours=1)),
        # Opened a minute ago: its first response is due in nine minutes, after the rebuild.
        opened(fresh, "HD-3", clock.now() - timedelta(minutes=1)),
    ]
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10
    )
    store = DeadlineStore(settings.database_url)
    await store.create_schema()
    async with (
        producer(kafka_bootstrap) as p,
        TopicReader(kafka_bootstrap, ESCALATION_COMMANDS.qualified(topic_prefix)) as commands,
        TopicReader(kafka_bootstrap, NOTIFICATION_REQUESTS.qualified(topic_prefix)) as requests,
    ):
        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, *history)
        try:
            result = await rebuild(common, store, escalation_policy(settings), clock)
            assert (result.events, result.skipped, result.handled) == (len(history), 0, 1)
            late_clock, climbed_clock, fresh_clock = [await store.clock_of(t) for t in (late, climbed, fresh)]
        finally:
            await store.close()
        assert late_clock is not None and late_clock.resolution_breached and late_clock.escalated_to == 2  # as if sent
        assert climbed_clock is not None and (climbed_clock.level, climbed_clock.state) == (2, DeadlineState.CANCELLED)
        assert fresh_clock is not None and fresh_clock.state is DeadlineState.PENDING
        assert await group_lag(kafka_bootstrap, topic_prefix + GROUP, TICKET_EVENTS_TOPIC.qualified(topic_prefix)) == 0

        # The service starts after the replayed events; only the fresh ticket escalates, when it is due.
        service = build(common, settings, clock=clock)
        async with service._lifespan(service.app):
            assert await commands.read_for(1.0) == [] and await requests.read_for(0.1) == []
            clock.advance(timedelta(minutes=10))
            found = await commands.wait_for(lambda m: m.ticket_id == fresh)
            await commands.read_for(0.5)
        assert [m.ticket_id for m in commands.messages] == [fresh] == [m.ticket_id for m in found]


async def test_a_rebuild_refuses_while_the_service_consumes(
    kafka_bootstrap: str, topic_prefix: str, settings: Settings
) -> None:
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10
    )
    service = build(common, settings, clock=MovableClock())
    store = DeadlineStore(settings.database_url)
    async with service._lifespan(service.app):
        try:
            with pytest.raises(ServiceRunning):
                for _ in range(100):  # until the service's consumer has joined its group
                    await rebuild(common, store, escalation_policy(settings), MovableClock())
                    await asyncio.sleep(0.1)
        finally:
            await store.close()
