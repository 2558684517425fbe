"""SLA policies over the real broker: the policy the priority chooses times the escalation, and every
change of a ticket's deadlines is published on the SLA topic."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from contracts.commands import EscalateTicket
from contracts.envelope import Envelope, new_envelope
from contracts.notifications import NotificationRequested
from contracts.sla import SlaDeadlinesChanged
from contracts.tickets import (
    TicketClaimed,
    TicketClaimedData,
    TicketNoteAdded,
    TicketNoteAddedData,
    TicketPrioritised,
    TicketPrioritisedData,
)
from contracts.topics import (
    NOTIFICATION_REQUESTS,
    SLA_DEADLINES,
    ESCALATION_COMMANDS,
    TICKET_EVENTS_TOPIC,
)
from runtime.settings import CommonSettings
from services.escalation.bootstrap import build
from services.escalation.config import Settings
from services.escalation.domain.message_ids import (
    escalate_command_id,
    warning_notification_id,
)
from tests.integration.test_escalation_service import (
    MovableClock,
    TopicReader,
    about,
    deadlines_until,
    opened,
    producer,
    publish,
)
from tests.support.kafka import wait_for
from tests.support.tokens import development_bearer

POLICIES = """\
default_calendar: 24x7
policies:
  - name: p1-outage
    match: {priority: 1}
    first_response: 60
    warn_at_percent: [50]
  - name: everything-else
    first_response: 1d
"""

LEAD = development_bearer("lead-1", ("agent", "lead"))  # a team lead's token the services accept


@asynccontextmanager
async def escalation_with_policies(
    kafka_bootstrap: str, topic_prefix: str, database_url: str, clock: MovableClock, policies: Path
) -> AsyncIterator[httpx.AsyncClient]:
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10
    )
    settings = Settings(database_url=database_url, policies_file=policies, timer_interval_s=0.05)
    service = build(common, settings, clock=clock)
    transport = httpx.ASGITransport(app=service.app)
    async with service._lifespan(service.app), httpx.AsyncClient(transport=transport, base_url="http://t", headers=LEAD) as client:
        yield client


def prioritised(ticket_id: uuid.UUID, priority: int) -> Envelope[Any]:
    data = TicketPrioritisedData(number="HD-5", version=2, priority=priority, rule="r", reason="x", by="routing")  # type: ignore[arg-type]
    return new_envelope(TicketPrioritised, data, ticket_id=ticket_id)


def claimed(ticket_id: uuid.UUID) -> Envelope[Any]:
    return new_envelope(TicketClaimed, TicketClaimedData(number="HD-5", version=4, agent_id="a1"), ticket_id=ticket_id)


async def test_a_priority_1_ticket_is_held_to_its_policy_and_every_change_is_published(
    kafka_bootstrap: str, topic_prefix: str, sqlite_database: str, tmp_path: Path
) -> None:
    policies = tmp_path / "sla.yaml"
    policies.write_text(POLICIES, encoding="utf-8")
    clock, ticket = MovableClock(), uuid.uuid4()
    async with (
        escalation_with_policies(kafka_bootstrap, topic_prefix, sqlite_database, clock, policies) as client,
        producer(kafka_bootstrap) as p,
        TopicReader(kafka_bootstrap, SLA_DEADLINES.qualified(topic_prefix)) as sla,
        TopicReader(kafka_bootstrap, ESCALATION_COMMANDS.qualified(topic_prefix)) as commands,
    ):
        opening = opened(ticket, "HD-5", clock.now())
        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, opening)
        [first] = await sla.wait_for(about(ticket, SlaDeadlinesChanged))
        assert first.data.policy == "everything-else"
        assert first.data.deadlines[0].due_at == opening.occurred_at + timedelta(days=1)

        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, prioritised(ticket, 1))
        found = await sla.wait_for(lambda m: about(ticket, SlaDeadlinesChanged)(m) and m.data.policy == "p1-outage")
        kinds = {d.kind: d for d in found[0].data.deadlines}
        assert kinds["first_response"].due_at == opening.occurred_at + timedelta(seconds=60)
        assert kinds["first_response"].warn_at == opening.occurred_at + timedelta(seconds=30)
        assert (kinds["escalation"].level, kinds["escalation"].state) == (2, "running")
        api = (await client.get(f"/v1/tickets/{ticket}/deadlines")).json()["deadlines"]
        assert [(d["policy"], d["priority"]) for d in api] == [("p1-outage", 1)]

        clock.advance(timedelta(seconds=61))
        [command] = await commands.wait_for(about(ticket, EscalateTicket))
        assert "p1-outage" in command.data.reason
        breached = await sla.wait_for(
            lambda m: about(ticket, SlaDeadlinesChanged)(m) and m.data.deadlines[0].state == "breached"
        )
        assert breached[0].causation_id == str(command.event_id)

        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, claimed(ticket))
        await sla.wait_for(lambda m: about(ticket, SlaDeadlinesChanged)(m) and m.data.deadlines[0].state == "met")
        shown = (await client.get(f"/v1/tickets/{ticket}/deadlines")).json()
        assert shown["deadlines"] == []  # no clock running any more...
        assert [(d["kind"], d["state"]) for d in shown["sla"]] == [("first_response", "met"), ("escalation", "met")]

        async def measured() -> dict[str, Any] | None:  # the claim's time is committed just after it is published
            figures = (await client.get("/v1/sla/metrics")).json()
            return figures if figures["first_response"] else None

        metrics = await wait_for(measured, timeout=10)
        assert any(b["priority"] == 1 and b["count"] >= 1 for b in metrics["breaches"])
        assert any(t["priority"] == 1 and t["mean_s"] > 0 for t in metrics["first_response"])


def is_about(ticket: uuid.UUID, template: str) -> Any:
    return lambda m: about(ticket, NotificationRequested)(m) and m.data.template == template


async def test_a_restart_between_warning_and_breach_loses_nothing_and_doubles_nothing(
    kafka_bootstrap: str, topic_prefix: str, database_url: str, tmp_path: Path
) -> None:
    policies = tmp_path / "sla.yaml"
    policies.write_text(POLICIES, encoding="utf-8")
    clock, ticket = MovableClock(), uuid.uuid4()
    async with (
        producer(kafka_bootstrap) as p,
        TopicReader(kafka_bootstrap, ESCALATION_COMMANDS.qualified(topic_prefix)) as commands,
        TopicReader(kafka_bootstrap, NOTIFICATION_REQUESTS.qualified(topic_prefix)) as requests,
    ):
        async with escalation_with_policies(kafka_bootstrap, topic_prefix, database_url, clock, policies) as client:
            await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, opened(ticket, "HD-5", clock.now()),
                          prioritised(ticket, 1))
            await deadlines_until(client, ticket, lambda f: bool(f) and f[0]["policy"] == "p1-outage")
            clock.advance(timedelta(seconds=31))  # past the 50% warning, before the breach
            [warning] = await requests.wait_for(is_about(ticket, "sla_warning"))
            assert warning.event_id == warning_notification_id(ticket, 1, 50)
            assert warning.data.recipient.email == "l1-oncall@helpdesk.example"
            assert await commands.read_for(0.3) == []
        # Restarted on the same database: the warning is not sent again, and the breach still fires.
        async with escalation_with_policies(kafka_bootstrap, topic_prefix, database_url, clock, policies):
            assert [m for m in await requests.read_for(0.5) if is_about(ticket, "sla_warning")(m)] == [warning]
            clock.advance(timedelta(seconds=30))
            [command] = await commands.wait_for(about(ticket, EscalateTicket))
            assert command.event_id == escalate_command_id(ticket, 2)
            await requests.read_for(0.5)
        assert len(await commands.read_for(0.2)) == 1
        assert len([m for m in requests.messages if is_about(ticket, "sla_warning")(m)]) == 1
        assert len([m for m in requests.messages if is_about(ticket, "ticket_escalated")(m)]) == 1


UPDATES_POLICY = """\
default_calendar: 24x7
policies:
  - name: p1-outage
    match: {priority: 1}
    first_response: 60
    next_update: 60
    resolution: 1d
    warn_at_percent: []
  - name: everything-else
    first_response: 1d
"""


def public_note(ticket_id: uuid.UUID, at: Any) -> Envelope[Any]:
    data = TicketNoteAddedData(number="HD-6", version=5, text="Still on it", visibility="public", author="a1")
    return new_envelope(TicketNoteAdded, data, ticket_id=ticket_id, occurred_at=at)


async def test_a_claimed_ticket_without_a_public_update_in_time_escalates_once_and_a_reply_restarts_the_clock(
    kafka_bootstrap: str, topic_prefix: str, sqlite_database: str, tmp_path: Path
) -> None:
    policies = tmp_path / "sla.yaml"
    policies.write_text(UPDATES_POLICY, encoding="utf-8")
    clock, ticket = MovableClock(), uuid.uuid4()
    async with (
        escalation_with_policies(kafka_bootstrap, topic_prefix, sqlite_database, clock, policies),
        producer(kafka_bootstrap) as p,
        TopicReader(kafka_bootstrap, SLA_DEADLINES.qualified(topic_prefix)) as sla,
        TopicReader(kafka_bootstrap, ESCALATION_COMMANDS.qualified(topic_prefix)) as commands,
    ):
        claim = new_envelope(TicketClaimed, TicketClaimedData(number="HD-6", version=3, agent_id="a1"),
                             ticket_id=ticket, occurred_at=clock.now())
        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, opened(ticket, "HD-6", clock.now()),
                      prioritised(ticket, 1), claim)

        def next_update(state: str) -> Any:
            return lambda m: about(ticket, SlaDeadlinesChanged)(m) and any(
                d.kind == "next_update" and d.state == state for d in m.data.deadlines)

        [running] = await sla.wait_for(next_update("running"))
        [owed] = [d for d in running.data.deadlines if d.kind == "next_update"]
        assert owed.due_at == claim.occurred_at + timedelta(seconds=60)

        clock.advance(timedelta(seconds=61))
        [command] = await commands.wait_for(about(ticket, EscalateTicket))
        assert command.event_id == escalate_command_id(ticket, 2) and "next-update" in command.data.reason
        await sla.wait_for(next_update("breached"))

        note = public_note(ticket, clock.now())
        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, note)
        fresh = await sla.wait_for(lambda m: next_update("running")(m) and m.causation_id == str(note.event_id))
        [owed] = [d for d in fresh[0].data.deadlines if d.kind == "next_update"]
        assert owed.due_at == note.occurred_at + timedelta(seconds=60)
        assert len(await commands.read_for(0.3)) == 1  # the breach was sent once
