"""Routing against the real broker: a ticket.opened becomes exactly one route command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts.commands import RouteTicket
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import CustomerProfile
from contracts.tickets import (
    TicketClaimed,
    TicketClaimedData,
    TicketOpened,
    TicketOpenedData,
)
from contracts.topics import ROUTING_COMMANDS, TICKET_EVENTS_TOPIC
from runtime.settings import CommonSettings
from services.routing.adapters.rules_file import RulesFileError
from services.routing.bootstrap import build
from services.routing.config import Settings
from services.routing.domain import ROUTING_NAMESPACE
from tests.support.kafka import group_lag, produce, read_all, wait_for

ROOT = Path(__file__).resolve().parents[2]

RULES = """\
priority:
  default: 3
  matrix:
    high:   {high: 1, medium: 2, low: 3}
    medium: {high: 2, medium: 3, low: 4}
    low:    {high: 3, medium: 4, low: 5}
  rules:
    - name: business-down
      when: {keywords: [outage]}
      set: 1
    - name: vip-customer
      when: {vip: true}
      raise_by: 1
queues:
  default: L1-service-desk
  rules:
    - name: network
      when: {components: [vpn]}
      queue: L2-network
"""


@dataclass
class Routing:
    bootstrap: str
    events: str
    commands: str

    async def publish(self, event: Envelope) -> None:
        await produce(self.bootstrap, self.events, event.model_dump_json().encode(), key=str(event.ticket_id).encode())

    async def commands_after_all_events(self) -> list[RouteTicket]:
        """Every command on the topic, read once routing has committed every event (so none is still coming)."""
        await wait_for(lambda: _no_lag(self.bootstrap, self.events), timeout=30)
        records = await read_all(self.bootstrap, self.commands, at_least=1, timeout=5)
        return [RouteTicket.model_validate_json(r.value) for r in records]


async def _no_lag(bootstrap: str, topic: str) -> bool:
    prefix = topic.removesuffix(TICKET_EVENTS_TOPIC.name)  # groups carry the topic prefix too
    return await group_lag(bootstrap, f"{prefix}helpdesk-routing", topic) == 0


@pytest.fixture
async def routing(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> AsyncIterator[Routing]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10
    )
    settings = Settings(rules_file=rules, database_url=f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}")
    service = build(common, settings)
    async with service._lifespan(service.app):
        yield Routing(kafka_bootstrap, topic_prefix + TICKET_EVENTS_TOPIC.name, topic_prefix + ROUTING_COMMANDS.name)


def opened(subject: str, *, vip: bool = False, components: list[str] | None = None) -> TicketOpened:
    data = TicketOpenedData(
        number="HD-7",
        version=1,
        channel="email",
        channel_message_id=f"<{uuid.uuid4().hex}@example.com>",
        reported_at=datetime.now(UTC),
        subject=subject,
        description="",
        components=components or [],
        impact="medium",
        urgency="medium",
        customer=CustomerProfile(identified=True, identified_by="email", customer_id="u-1001", vip=vip),
    )
    return new_envelope(TicketOpened, data, ticket_id=uuid.uuid4(), correlation_id="trace-7")  # type: ignore[return-value]


async def test_a_ticket_opened_yields_exactly_the_expected_route_command(routing: Routing) -> None:
    event = opened("Email slow", vip=True, components=["VPN"])
    claimed = new_envelope(
        TicketClaimed, TicketClaimedData(number="HD-6", version=3, agent_id="agent-1"), ticket_id=uuid.uuid4()
    )
    await routing.publish(claimed)  # not routing's business: passed over
    await routing.publish(event)

    [command] = await routing.commands_after_all_events()
    assert command.event_id == uuid.uuid5(ROUTING_NAMESPACE, f"route:{event.event_id}")
    assert command.ticket_id == event.ticket_id
    assert command.causation_id == str(event.event_id)
    assert command.correlation_id == "trace-7"
    assert command.data.model_dump() == {
        "priority": 2,
        "priority_rule": "vip-customer",
        "priority_reason": "customer is VIP: raised from 3 to 2 (impact medium x urgency medium: priority 3)",
        "queue": "L2-network",
        "queue_rule": "network",
        "queue_reason": "component 'vpn'",
    }
    records = await read_all(routing.bootstrap, routing.commands)
    assert [r.key for r in records] == [str(event.ticket_id).encode()]


async def test_a_redelivered_ticket_opened_sends_no_second_command(routing: Routing) -> None:
    event = opened("Total outage in Leeds")
    await routing.publish(event)
    await routing.publish(event)

    [command] = await routing.commands_after_all_events()
    assert command.event_id == uuid.uuid5(ROUTING_NAMESPACE, f"route:{event.event_id}")
    assert (command.data.priority, command.data.priority_rule) == (1, "business-down")


def test_a_rules_file_with_an_error_fails_start_up_naming_file_and_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("raise_by: 1", "raise_by: one"), encoding="utf-8")
    expected = f"{rules}:13: priority.rules[1].raise_by: Input should be a valid integer"

    with pytest.raises(RulesFileError, match=re.escape(expected)):
        build(CommonSettings(), Settings(rules_file=rules))

    env = {**os.environ, "ROUTING_RULES_FILE": str(rules), "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-m", "services.routing"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert expected in result.stderr
