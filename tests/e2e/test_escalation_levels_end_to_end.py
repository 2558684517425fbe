"""An unanswered ticket climbs L1 → L2 → L3 over the real broker, with tickets, escalation and notify running
in-process (their own ``build()``), notify sending to a real SMTP server and a real SMS provider endpoint.

Escalation runs on a clock the test moves, so its one-minute targets pass in an instant; tickets and notify
run on the wall clock. Escalation is restarted between the first warning and the first breach: nothing is
lost and nothing is sent twice. A claimed ticket whose resolution target passes moves up a level and keeps
its owner.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts.commands import EscalateTicket, RouteTicket, RouteTicketData
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import (
    Channel,
    CustomerProfile,
    IncidentIdentified,
    IncidentIdentifiedData,
)
from contracts.tickets import TicketAssigned, TicketClaimed, TicketEscalated, TicketOpened
from contracts.topics import (
    ESCALATION_COMMANDS,
    INCIDENTS_IDENTIFIED,
    ROUTING_COMMANDS,
    TICKET_EVENTS_TOPIC,
    Topic,
)
from runtime.service import Service
from runtime.settings import CommonSettings
from services.escalation.bootstrap import build as build_escalation
from services.escalation.config import Settings as EscalationSettings
from services.notify.bootstrap import build as build_notify
from services.notify.config import Settings as NotifySettings
from tests.support.tokens import AUTH, development_bearer, mint
from services.tickets.bootstrap import build as build_tickets
from services.tickets.config import Settings as TicketsSettings
from tests.integration.test_escalation_service import (
    MovableClock,
    TopicReader,
    producer,
)
from tests.support.provider_sink import ProviderSink
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.e2e

TARGET = timedelta(seconds=60)
LEVELS = """\
levels:
  - {level: 1, name: L1, queue: null, email: l1@helpdesk.example}
  - level: 2
    name: L2
    queue: L2-specialists
    email: l2@helpdesk.example
    notify: [{method: sms, phone: "+4930000002"}]
  - level: 3
    name: L3
    queue: L3-engineering
    email: l3@helpdesk.example
    agent: oncall-olga
    notify: [{method: sms, phone: "+4930000003"}]
"""
POLICIES = """\
default_calendar: 24x7
policies:
  - name: everything
    first_response: 60
    warn_at_percent: [50]
"""

LEAD = development_bearer("lead-1", ("agent", "lead"))  # a team lead's token the services accept


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def sms() -> Iterator[ProviderSink]:
    with ProviderSink() as sink:
        yield sink


@asynccontextmanager
async def running(service: Service) -> AsyncIterator[Service]:
    async with service._lifespan(service.app):
        yield service


async def send(p: AIOKafkaProducer, prefix: str, topic: Topic, message: Envelope[Any], key: str) -> None:
    await p.send_and_wait(topic.qualified(prefix), message.model_dump_json().encode(), key=key.encode())


async def until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """``check()``'s first truthy answer, polled until ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if found := check():
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout}s")


def move_to(clock: MovableClock, at: datetime) -> None:
    clock.advance(max(timedelta(0), at - clock.now()))


def mails_to(smtp: SmtpSink, address: str, subject_part: str) -> list[Any]:
    return [m for m in smtp.messages if address in m.rcpt_tos and subject_part in str(m.message["Subject"])]


def texts_to(sink: ProviderSink, phone: str, body_part: str) -> list[Any]:
    return [r for r in sink.accepted if r.form.get("To") == phone and body_part in r.form.get("Body", "")]


async def test_an_unanswered_ticket_climbs_every_level_and_each_level_hears_of_it_once(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, smtp: SmtpSink, sms: ProviderSink
) -> None:
    (tmp_path / "levels.yaml").write_text(LEVELS)
    (tmp_path / "sla.yaml").write_text(POLICIES)
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10
    )
    clock = MovableClock()

    def escalation() -> Service:
        settings = EscalationSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/escalation.db", levels_file=tmp_path / "levels.yaml",
            policies_file=tmp_path / "sla.yaml", timer_interval_s=0.05,
        )
        return build_escalation(common, settings, clock=clock)

    tickets = build_tickets(common, TicketsSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/tickets.db"))
    notify = build_notify(common, NotifySettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/notify.db", smtp_port=smtp.port, acknowledge_openings=False,
        mail_public_notes=False, twilio_base_url=sms.url, twilio_account_sid="AC123", twilio_auth_token="tok",
        http_timeout_s=2,
    ))
    incident = IncidentIdentifiedData(
        channel=Channel.EMAIL, channel_message_id=f"m-{uuid.uuid4().hex[:8]}", received_at=datetime.now(UTC),
        subject="Nobody picks this up", customer=CustomerProfile(identified=True, customer_id="C-1"),
    )
    async with (
        running(tickets), running(notify), producer(kafka_bootstrap) as p,
        TopicReader(kafka_bootstrap, TICKET_EVENTS_TOPIC.qualified(topic_prefix)) as events,
    ):
        async with running(escalation()):
            await send(p, topic_prefix, INCIDENTS_IDENTIFIED, new_envelope(IncidentIdentified, incident), "k")
            [opening] = await events.wait_for(lambda m: isinstance(m, TicketOpened))
            ticket, number = opening.ticket_id, opening.data.number
            route = RouteTicketData(priority=3, priority_rule="r", priority_reason="test", queue="service-desk",
                                    queue_rule="r", queue_reason="test")
            await send(p, topic_prefix, ROUTING_COMMANDS, new_envelope(RouteTicket, route, ticket_id=ticket),
                       str(ticket))
            await events.wait_for(lambda m: m.type == "ticket.routed")
            # Escalation's clock runs ahead of the wall clock from here: 31 s after the opening is past the warning.
            move_to(clock, opening.occurred_at + TARGET / 2 + timedelta(seconds=1))
            await until(lambda: mails_to(smtp, "l1@helpdesk.example", "50%"))
        # Restarted between the warning and the breach, on the same database.
        async with running(escalation()):
            move_to(clock, opening.occurred_at + TARGET)
            [to_l2] = await events.wait_for(lambda m: isinstance(m, TicketEscalated))
            move_to(clock, to_l2.occurred_at + TARGET)  # L2's whole target, counted from its ticket.escalated
            await events.wait_for(lambda m: isinstance(m, TicketAssigned))
            await until(lambda: texts_to(sms, "+4930000003", "escalated"))
            await until(lambda: mails_to(smtp, "l3@helpdesk.example", "escalated"))
            await events.read_for(1.0)  # anything sent twice would show by now

    escalations = [m for m in events.messages if isinstance(m, TicketEscalated)]
    assert [(e.data.level, e.data.queue) for e in escalations] == [(2, "L2-specialists"), (3, "L3-engineering")]
    [assigned] = [m for m in events.messages if isinstance(m, TicketAssigned)]
    assert (assigned.data.agent_id, assigned.data.strategy) == ("oncall-olga", "direct")
    assert events.messages.index(assigned) > events.messages.index(escalations[-1])  # in L3's queue, then Olga's

    assert len(mails_to(smtp, "l1@helpdesk.example", "50%")) == 1  # the warning, not again after the restart
    for level, address in ((2, "l2@helpdesk.example"), (3, "l3@helpdesk.example")):
        [mail] = mails_to(smtp, address, "escalated")
        assert number in str(mail.message["Subject"]) and f"L{level}" in str(mail.message["Subject"])
    assert mails_to(smtp, "l1@helpdesk.example", "escalated") == []
    assert len(texts_to(sms, "+4930000002", "escalated")) == 1
    assert len(texts_to(sms, "+4930000003", "escalated")) == 1


RESOLUTION_POLICIES = """\
default_calendar: 24x7
policies:
  - name: everything
    first_response: 60
    resolution: 120
    warn_at_percent: []
"""


async def test_a_claimed_ticket_past_its_resolution_target_moves_up_a_level_and_keeps_its_owner(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "levels.yaml").write_text(LEVELS)
    (tmp_path / "sla.yaml").write_text(RESOLUTION_POLICIES)
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10
    )
    clock = MovableClock()
    escalation = build_escalation(common, EscalationSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/escalation.db", levels_file=tmp_path / "levels.yaml",
        policies_file=tmp_path / "sla.yaml", timer_interval_s=0.05,
    ), clock=clock)
    tickets_settings = TicketsSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/tickets.db")
    tickets = build_tickets(common, tickets_settings, AUTH)
    incident = IncidentIdentifiedData(
        channel=Channel.EMAIL, channel_message_id=f"m-{uuid.uuid4().hex[:8]}", received_at=datetime.now(UTC),
        subject="Claimed, then forgotten", customer=CustomerProfile(identified=True, customer_id="C-2"),
    )
    agent = {"Authorization": f"Bearer {mint('agent-ann')}"}
    async with (
        running(tickets), running(escalation), producer(kafka_bootstrap) as p,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=tickets.app), base_url="http://t", headers=agent) as desk,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=escalation.app), base_url="http://e", headers=LEAD) as sla,
        TopicReader(kafka_bootstrap, TICKET_EVENTS_TOPIC.qualified(topic_prefix)) as events,
        TopicReader(kafka_bootstrap, ESCALATION_COMMANDS.qualified(topic_prefix)) as commands,
    ):
        await send(p, topic_prefix, INCIDENTS_IDENTIFIED, new_envelope(IncidentIdentified, incident), "k")
        [opening] = await events.wait_for(lambda m: isinstance(m, TicketOpened))
        ticket, number = opening.ticket_id, opening.data.number
        route = RouteTicketData(priority=3, priority_rule="r", priority_reason="test", queue="service-desk",
                                queue_rule="r", queue_reason="test")
        await send(p, topic_prefix, ROUTING_COMMANDS, new_envelope(RouteTicket, route, ticket_id=ticket),
                   str(ticket))
        await events.wait_for(lambda m: m.type == "ticket.routed")
        assert (await desk.post(f"/v1/tickets/{number}/claim")).status_code == 200
        await events.wait_for(lambda m: isinstance(m, TicketClaimed))

        async def first_response_met() -> bool:
            listed = (await sla.get(f"/v1/tickets/{ticket}/deadlines")).json()["sla"]
            return any(d["kind"] == "first_response" and d["state"] == "met" for d in listed)

        end = time.monotonic() + 30
        while not await first_response_met():  # escalation has the claim: only the resolution clock runs
            assert time.monotonic() < end, "escalation never applied the claim"
            await asyncio.sleep(0.05)

        move_to(clock, opening.occurred_at + timedelta(seconds=121))
        [to_l2] = await events.wait_for(lambda m: isinstance(m, TicketEscalated))
        [command] = [m for m in await commands.read_for(0.5) if isinstance(m, EscalateTicket)]
        shown = (await desk.get(f"/v1/tickets/{number}")).json()

    assert command.data.targets == ["resolution"] and command.data.level == 2
    assert (to_l2.data.level, to_l2.data.queue) == (2, "L2-specialists")
    assert (shown["level"], shown["queue"], shown["assignee"]) == (2, "L2-specialists", "agent-ann")
    assert not [m for m in events.messages if isinstance(m, TicketAssigned)]  # L2 names no on-call agent
