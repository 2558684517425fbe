"""Routing as a whole, over the real broker and its own store: assignment, explanations, agents,
a rules file reloaded (with an error, then fixed), and state that survives a restart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.commands import TICKET_COMMANDS, AssignTicket, RouteTicket
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import CustomerProfile
from contracts.registry import parse_message
from contracts.tickets import (
    TicketClaimed,
    TicketClaimedData,
    TicketCustomerReplied,
    TicketCustomerRepliedData,
    TicketOpened,
    TicketOpenedData,
    TicketPrioritised,
    TicketPrioritisedData,
)
from contracts.topics import ROUTING_COMMANDS, TICKET_EVENTS_TOPIC
from runtime.settings import CommonSettings
from services.routing.adapters.rules_file import RulesFileError
from services.routing.bootstrap import build
from services.routing.config import Settings
from tests.support.kafka import group_lag, produce, read_all, wait_for
from tests.support.tokens import development_bearer

ROOT = Path(__file__).resolve().parents[2]

RULES = """\
priority:
  matrix:
    high:   {high: 1, medium: 2, low: 3}
    medium: {high: 2, medium: 3, low: 4}
    low:    {high: 3, medium: 4, low: 5}
  rules:
    - {name: business-down, when: {keywords: [outage]}, set: 1}
queues:
  default: L1-service-desk
  assignment: {L2-network: least_loaded}
  rules:
    - {name: network, when: {components: [vpn]}, queue: L2-network, skills: [vpn]}
"""

AGENTS = """\
agents:
  - {id: net-1, skills: [vpn], languages: [en], level: 2, queues: [L2-network]}
  - {id: net-2, skills: [vpn], languages: [en], level: 2, queues: [L2-network]}
  - {id: desk-1, skills: [windows], queues: [L1-service-desk]}
"""

LEAD = development_bearer("lead-1", ("agent", "lead"))  # a team lead's token the services accept


@dataclass
class Routing:
    bootstrap: str
    prefix: str
    http: httpx.AsyncClient
    rules: Path

    async def publish(self, *events: Envelope[Any]) -> None:
        for event in events:
            value = event.model_dump_json().encode()
            await produce(
                self.bootstrap, self.prefix + TICKET_EVENTS_TOPIC.name, value, key=str(event.ticket_id).encode()
            )

    async def settled(self) -> None:
        """Routing has committed every event published so far."""
        group, topic = f"{self.prefix}helpdesk-routing", self.prefix + TICKET_EVENTS_TOPIC.name
        await wait_for(lambda: _lag_zero(self.bootstrap, group, topic), timeout=30)

    async def commands(self, at_least: int = 1) -> list[Envelope[Any]]:
        await self.settled()
        records = await read_all(self.bootstrap, self.prefix + ROUTING_COMMANDS.name, at_least=at_least, timeout=5)
        return [parse_message(r.value, TICKET_COMMANDS) for r in records]


async def _lag_zero(bootstrap: str, group: str, topic: str) -> bool:
    return await group_lag(bootstrap, group, topic) == 0


@asynccontextmanager
async def running(bootstrap: str, prefix: str, folder: Path, database_url: str) -> AsyncIterator[Routing]:
    rules, agents = folder / "rules.yaml", folder / "agents.yaml"
    if not rules.exists():
        rules.write_text(RULES, encoding="utf-8")
        agents.write_text(AGENTS, encoding="utf-8")
    common = CommonSettings(kafka_bootstrap_servers=bootstrap, kafka_topic_prefix=prefix, kafka_retry_backoff_ms=10)
    settings = Settings(rules_file=rules, agents_file=agents, database_url=database_url, reload_interval_s=0.05)
    service = build(common, settings)
    async with service._lifespan(service.app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t", headers=LEAD) as http:
            yield Routing(bootstrap, prefix, http, rules)


@pytest.fixture
async def routing(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> AsyncIterator[Routing]:
    async with running(kafka_bootstrap, topic_prefix, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}") as r:
        yield r


def opened(subject: str, *, components: tuple[str, ...] = (), number: str = "HD-1") -> Envelope[Any]:
    data = TicketOpenedData(
        number=number,
        version=1,
        channel="email",
        channel_message_id=uuid.uuid4().hex,
        reported_at=datetime.now(UTC),
        subject=subject,
        description="",
        components=list(components),
        impact="medium",
        urgency="medium",
        customer=CustomerProfile(identified=True, identified_by="email", customer_id="u-1"),
    )
    return new_envelope(TicketOpened, data, ticket_id=uuid.uuid4(), correlation_id=f"trace-{number}")


def later(model: type[Envelope[Any]], data: Any, of: Envelope[Any]) -> Envelope[Any]:
    return new_envelope(model, data, ticket_id=of.ticket_id, correlation_id=of.correlation_id)


async def test_a_ticket_in_a_least_loaded_queue_is_routed_assigned_and_explained(routing: Routing) -> None:
    first = opened("VPN drops", components=("VPN",), number="HD-1")
    second = opened("VPN slow", components=("vpn",), number="HD-2")
    await routing.publish(first)
    await routing.publish(second)

    commands = await routing.commands(at_least=4)
    assigned = {c.ticket_id: c.data.agent_id for c in commands if isinstance(c, AssignTicket)}
    routed = {c.ticket_id: c.data.queue for c in commands if isinstance(c, RouteTicket)}
    assert routed == {first.ticket_id: "L2-network", second.ticket_id: "L2-network"}
    assert sorted(assigned.values()) == ["net-1", "net-2"]  # the second went to the one holding nothing

    response = await routing.http.get(f"/v1/tickets/{first.ticket_id}/explanation")
    assert response.status_code == 200
    body = response.json()
    assert (body["number"], body["priority"], body["queue"], body["held_by"]) == (
        "HD-1",
        3,
        "L2-network",
        assigned[first.ticket_id],
    )
    [decision] = body["decisions"]
    assert decision["rules_matched"] == [
        {"kind": "queue", "rule": "network", "why": "component 'vpn'", "applied": True}
    ]
    assert decision["required_skills"] == ["vpn"]
    assert decision["notes"][0].startswith(f"assigned to {assigned[first.ticket_id]}: least loaded")
    assert (await routing.http.get(f"/v1/tickets/{uuid.uuid4()}/explanation")).status_code == 404


async def test_a_human_override_survives_a_customer_reply_and_the_explanation_says_so(routing: Routing) -> None:
    ticket = opened("Printer jam")
    override = later(
        TicketPrioritised,
        TicketPrioritisedData(number="HD-1", version=4, priority=5, rule="manual", reason="cosmetic", by="lead-1"),
        ticket,
    )
    replied = later(
        TicketCustomerReplied,
        TicketCustomerRepliedData(
            number="HD-1",
            version=5,
            channel="email",
            channel_message_id="r-1",
            received_at=datetime.now(UTC),
            text="it is a total outage now",
        ),
        ticket,
    )
    await routing.publish(ticket, override, replied)

    commands = await routing.commands()
    assert [c.data.priority for c in commands if isinstance(c, RouteTicket)] == [3]  # nothing sent to undo priority 5
    body = await wait_for(lambda: _explained(routing, ticket, decisions=3), timeout=10)
    assert (body["priority"], body["priority_set_by"]) == (5, "lead-1")
    assert [d["cause"] for d in body["decisions"]] == ["ticket.opened", "ticket.prioritised", "ticket.customer_replied"]
    assert body["decisions"][2]["notes"] == [
        "re-evaluated: the customer replied",
        "priority 5 kept: a human override (set to 5 by lead-1: cosmetic); the rules would give 1 (business-down)",
    ]


async def _explained(routing: Routing, ticket: Envelope[Any], decisions: int) -> dict[str, Any] | None:
    body = (await routing.http.get(f"/v1/tickets/{ticket.ticket_id}/explanation")).json()
    return body if len(body.get("decisions", ())) >= decisions else None


async def test_agents_are_read_from_the_file_and_changed_through_the_api(routing: Routing) -> None:
    net1 = (await routing.http.get("/v1/agents/net-1")).json()
    assert net1 == {
        "agent_id": "net-1",
        "skills": ["vpn"],
        "languages": ["en"],
        "level": 2,
        "queues": ["L2-network"],
        "available": True,
        "open_tickets": 0,
    }
    put = await routing.http.put(
        "/v1/agents/net-1", json={"skills": ["vpn"], "queues": ["L2-network"], "available": False}
    )
    assert put.status_code == 200 and put.json()["available"] is False
    assert (await routing.http.put("/v1/agents/x", json={"level": 0})).status_code == 422
    assert (await routing.http.get("/v1/agents/nobody")).status_code == 404

    tickets = [opened("VPN", components=("vpn",), number=f"HD-{n}") for n in range(3)]
    await routing.publish(*tickets)
    commands = await routing.commands(at_least=6)
    assert {c.data.agent_id for c in commands if isinstance(c, AssignTicket)} == {"net-2"}  # net-1 is away


async def test_a_reloaded_rules_file_with_an_error_keeps_the_old_rules_and_reports_it(routing: Routing) -> None:
    broken = RULES.replace("set: 1", "set: 9")
    routing.rules.write_text(broken, encoding="utf-8")
    status = await wait_for(lambda: _rejected(routing), timeout=10)
    assert status["errors"] == [f"{routing.rules}:7: priority.rules[0].set: Input should be less than or equal to 5"]
    assert "helpdesk_routing_rules_file_valid 0.0" in (await routing.http.get("/metrics")).text

    outage = opened("outage in Leeds", number="HD-1")
    await routing.publish(outage)
    [command] = await routing.commands()
    assert (command.data.priority, command.data.priority_rule) == (1, "business-down")  # the old rules decided

    routing.rules.write_text(RULES.replace("set: 1", "set: 2"), encoding="utf-8")
    await wait_for(lambda: _valid(routing), timeout=10)
    again = opened("outage in York", number="HD-2")
    await routing.publish(again)
    commands = await routing.commands(at_least=2)
    assert [c.data.priority for c in commands if c.ticket_id == again.ticket_id] == [2]


async def _rejected(routing: Routing) -> dict[str, Any] | None:
    status = (await routing.http.get("/v1/rules/status")).json()
    return status if status["errors"] else None


async def _valid(routing: Routing) -> bool:
    status = (await routing.http.get("/v1/rules/status")).json()
    return status["file_valid"] is True and status["rejected_at"] is None


async def test_loads_and_redelivery_survive_a_restart(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, database_url: str
) -> None:
    first = opened("VPN", components=("vpn",), number="HD-1")
    async with running(kafka_bootstrap, topic_prefix, tmp_path, database_url) as routing:
        await routing.publish(first)
        [_, assign] = await routing.commands(at_least=2)
        holder = assign.data.agent_id
        claimed = later(TicketClaimed, TicketClaimedData(number="HD-1", version=3, agent_id=holder), first)
        await routing.publish(claimed)
        await routing.settled()

    async with running(kafka_bootstrap, topic_prefix, tmp_path, database_url) as routing:
        await routing.publish(first)  # redelivered after the restart: applied already
        second = opened("VPN again", components=("vpn",), number="HD-2")
        await routing.publish(second)
        commands = await routing.commands(at_least=4)
        assert len(commands) == 4
        [assign_2] = [c for c in commands if isinstance(c, AssignTicket) and c.ticket_id == second.ticket_id]
        assert assign_2.data.agent_id != holder  # the other agent holds fewer open tickets
        loads = {a: (await routing.http.get(f"/v1/agents/{a}")).json()["open_tickets"] for a in ("net-1", "net-2")}
        assert loads == {"net-1": 1, "net-2": 1}
        listed = (await routing.http.get("/v1/agents")).json()
        assert [(a["agent_id"], a["open_tickets"]) for a in listed] == [("desk-1", 0), ("net-1", 1), ("net-2", 1)]
    await asyncio.sleep(0)


NAMED_RULE = """\
    - {name: ceo-desk, when: {keywords: [ceo]}, queue: L1-service-desk, assign_to: desk-1}
"""


async def test_a_rule_naming_an_agent_assigns_the_ticket_to_them_and_explains_it(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "rules.yaml").write_text(RULES + NAMED_RULE, encoding="utf-8")
    (tmp_path / "agents.yaml").write_text(AGENTS, encoding="utf-8")
    database = f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}"
    async with running(kafka_bootstrap, topic_prefix, tmp_path, database) as routing:
        ticket = opened("The CEO's laptop will not start")
        await routing.publish(ticket)
        route, assign = await routing.commands(at_least=2)

        assert isinstance(route, RouteTicket) and route.data.queue == "L1-service-desk"  # a pull queue
        assert isinstance(assign, AssignTicket) and assign.ticket_id == ticket.ticket_id
        assert (assign.data.agent_id, assign.data.strategy) == ("desk-1", "direct")
        body = (await routing.http.get(f"/v1/tickets/{ticket.ticket_id}/explanation")).json()
        assert body["held_by"] == "desk-1"
        [decision] = body["decisions"]
        assert (decision["queue_rule"], decision["assign_to"]) == ("ceo-desk", "desk-1")
        assert decision["notes"] == ["assigned to desk-1: queue rule 'ceo-desk' gives it to desk-1"]


def test_a_rule_naming_an_agent_the_agents_file_lacks_stops_start_up_naming_file_and_line(tmp_path: Path) -> None:
    rules, agents = tmp_path / "rules.yaml", tmp_path / "agents.yaml"
    rules.write_text(RULES + NAMED_RULE.replace("desk-1", "desk-9"), encoding="utf-8")
    agents.write_text(AGENTS, encoding="utf-8")
    expected = f"{rules}:13: queues.rules[1].assign_to: 'desk-9' is not an agent of the agents file {agents}"

    with pytest.raises(RulesFileError) as raised:
        build(CommonSettings(), Settings(rules_file=rules, agents_file=agents))
    assert raised.value.problems == [expected]

    env = {**os.environ, "ROUTING_RULES_FILE": str(rules), "ROUTING_AGENTS_FILE": str(agents),
           "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    result = subprocess.run([sys.executable, "-m", "services.routing"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert (result.returncode, result.stderr) == (2, f"invalid routing rules (ROUTING_RULES_FILE):\n{expected}\n")
