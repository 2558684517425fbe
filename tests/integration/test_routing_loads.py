"""Agents' loads under generated ticket lives, through routing's handler and its real store.

Hypothesis plays the ticket service for four tickets and four agents: opening
(into a least-loaded queue or a pull one), claims, assignments, releases,
resolutions, closings, reopenings, merges and escalations (into a round-robin
queue), each only where the ticket service allows it. The events reach
routing's handler (a batch at a time, sometimes twice), and routing's own
assign commands are carried out as the ticket service would: later, and
refused when the ticket was claimed or finished meanwhile. Whenever routing
has seen every event and no command of its is in flight, the load it holds
for each agent must be the open tickets the agent owns, counted here from
the ticket service's side.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from contracts.commands import AssignTicket
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import CustomerProfile
from contracts.tickets import (
    TicketAssigned,
    TicketAssignedData,
    TicketClaimed,
    TicketClaimedData,
    TicketClosed,
    TicketClosedData,
    TicketEscalated,
    TicketEscalatedData,
    TicketMergeReceived,
    TicketMergeReceivedData,
    TicketMerged,
    TicketMergedData,
    TicketOpened,
    TicketOpenedData,
    TicketReleased,
    TicketReleasedData,
    TicketReopened,
    TicketReopenedData,
    TicketResolved,
    TicketResolvedData,
)
from runtime.consumer import Delivery
from runtime.kafka import Outgoing, Publisher, make_broker
from runtime.settings import CommonSettings
from services.routing.adapters.store import RoutingStore, metadata
from services.routing.assignment import Agent
from services.routing.handlers import RouteTickets
from services.routing.reload import RulesInForce

RULES = """\
priority:
  matrix:
    high:   {high: 1, medium: 2, low: 3}
    medium: {high: 2, medium: 3, low: 4}
    low:    {high: 3, medium: 4, low: 5}
queues:
  default: L1-service-desk
  assignment: {L2-network: least_loaded, L2-escalated: round_robin}
  rules:
    - {name: network, when: {keywords: [vpn]}, queue: L2-network}
"""
AGENTS = [
    Agent("a-1", queues=frozenset({"L2-network"})),
    Agent("a-2", queues=frozenset({"L2-network", "L2-escalated"})),
    Agent("a-3", queues=frozenset({"L2-escalated"})),
]
PEOPLE = ("a-1", "a-2", "a-3", "x-4")  # x-4 is in no queue: only claims give it tickets
TICKETS = 4
ACTIONS = ("open", "claim", "assign", "release", "resolve", "close", "reopen", "merge", "escalate",
           "handle", "handle", "redeliver", "carry_out")


@dataclass
class Ticket:
    """A ticket as the ticket service holds it: only what ownership depends on."""

    ticket_id: uuid.UUID
    number: str
    version: int = 1
    assignee: str | None = None
    status: str = "open"  # open, resolved, closed, merged
    level: int = 1

    @property
    def finished(self) -> bool:
        return self.status != "open"


@dataclass
class TicketService:
    """Decides as services/tickets/domain.py does; every event it records waits for routing."""

    tickets: dict[int, Ticket] = field(default_factory=dict)
    unsent: list[Envelope[Any]] = field(default_factory=list)

    def record(self, ticket: Ticket, model: type[Envelope[Any]], data_type: type, **data: Any) -> None:
        ticket.version += 1
        payload = data_type(number=ticket.number, version=ticket.version, **data)
        self.unsent.append(new_envelope(model, payload, ticket_id=ticket.ticket_id, correlation_id=ticket.number))

    def act(self, action: str, which: int, person: str, other: int) -> None:
        if action == "open":
            self._open(which)
            return
        ticket = self.tickets.get(which)
        if ticket is None:
            return
        if action in ("claim", "assign"):
            self.give(ticket, person, claimed=action == "claim")
        elif action == "release" and not ticket.finished and ticket.assignee is not None:
            owner, ticket.assignee = ticket.assignee, None
            self.record(ticket, TicketReleased, TicketReleasedData, released_by="lead-1", previous_assignee=owner)
        elif action == "resolve" and not ticket.finished:  # a lead may resolve an unowned ticket
            ticket.status = "resolved"
            self.record(ticket, TicketResolved, TicketResolvedData, resolution="done", resolved_by="lead-1")
        elif action == "close" and ticket.status == "resolved":
            ticket.status = "closed"
            self.record(ticket, TicketClosed, TicketClosedData, closed_by="lead-1")
        elif action == "reopen" and ticket.status in ("resolved", "closed"):
            ticket.status = "open"
            self.record(ticket, TicketReopened, TicketReopenedData, reason="not fixed", reopened_by="lead-1")
        elif action == "merge":
            self._merge(ticket, self.tickets.get(other))
        elif action == "escalate" and not ticket.finished and ticket.level < 3:  # owned too: a late resolution
            ticket.level += 1
            queue = "L2-escalated" if ticket.level == 2 else "L3-major"
            self.record(ticket, TicketEscalated, TicketEscalatedData, level=ticket.level, queue=queue, reason="late")

    def give(self, ticket: Ticket, agent: str, *, claimed: bool, strategy: str = "direct") -> None:
        if ticket.finished or ticket.assignee is not None:
            return  # refused (or, to its owner, nothing to record)
        ticket.assignee = agent
        if claimed:
            self.record(ticket, TicketClaimed, TicketClaimedData, agent_id=agent)
        else:
            self.record(ticket, TicketAssigned, TicketAssignedData, agent_id=agent, strategy=strategy, reason="r")

    def carry_out(self, command: AssignTicket) -> None:
        ticket = next(t for t in self.tickets.values() if t.ticket_id == command.ticket_id)
        self.give(ticket, command.data.agent_id, claimed=False, strategy=command.data.strategy)

    def loads(self) -> Counter[str]:
        return Counter(t.assignee for t in self.tickets.values() if t.assignee and not t.finished)

    def _open(self, which: int) -> None:
        if which in self.tickets:
            return
        ticket = self.tickets[which] = Ticket(uuid.uuid4(), f"HD-{which + 1}")
        data = TicketOpenedData(
            number=ticket.number,
            version=1,
            channel="email",
            channel_message_id=uuid.uuid4().hex,
            reported_at=datetime.now(UTC),
            subject="VPN down" if which % 2 == 0 else "Printer jam",
            description="",
            customer=CustomerProfile(identified=False),
        )
        self.unsent.append(new_envelope(TicketOpened, data, ticket_id=ticket.ticket_id, correlation_id=ticket.number))

    def _merge(self, ticket: Ticket, into: Ticket | None) -> None:
        past = ("closed", "merged")
        if into is None or into is ticket or ticket.status in past or into.status in past:
            return
        ticket.status = "merged"
        self.record(ticket, TicketMerged, TicketMergedData, into_ticket_id=into.ticket_id, into_number=into.number,
                    reason="same", merged_by="lead-1")
        self.record(into, TicketMergeReceived, TicketMergeReceivedData, from_ticket_id=ticket.ticket_id,
                    from_number=ticket.number, reason="same", merged_by="lead-1")


class Recorded:
    """The real publisher; what routing sent is also kept, for the ticket service to carry out."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher
        self.assignments: list[AssignTicket] = []

    async def publish_all(self, items: Sequence[Outgoing]) -> None:
        await self._publisher.publish_all(items)
        self.assignments += [i.message for i in items if isinstance(i.message, AssignTicket)]


@pytest.fixture
async def publisher(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Publisher]:
    broker = make_broker("routing-test", CommonSettings(kafka_bootstrap_servers=kafka_bootstrap))
    await broker.connect()
    try:
        yield Publisher(broker, "routing", topic_prefix)
    finally:
        await broker.stop()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[RoutingStore]:
    routing_store = RoutingStore(database_url)
    await routing_store.create_schema()
    yield routing_store
    await routing_store.close()


@pytest.fixture
def rules(tmp_path: Path) -> RulesInForce:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return RulesInForce(path)


steps = st.lists(
    st.tuples(
        st.sampled_from(ACTIONS),
        st.integers(0, TICKETS - 1),
        st.sampled_from(PEOPLE),
        st.integers(0, TICKETS - 1),
    ),
    max_size=40,
)


@settings(
    max_examples=40,
    deadline=None,
    # One database for all examples: each example starts from empty tables.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
# Routing's pick refused (a lead resolved the ticket first), then the ticket reopens: it has no owner.
@example(steps=[("open", 0, "", 0), ("handle", 0, "", 0), ("resolve", 0, "", 0), ("handle", 0, "", 0),
                ("carry_out", 0, "", 0), ("reopen", 0, "", 0), ("handle", 0, "", 0)])
# Released by its owner, and escalated: the round-robin queue's agent gets it.
@example(steps=[("open", 1, "", 0), ("claim", 1, "a-1", 0), ("handle", 0, "", 0), ("release", 1, "", 0),
                ("escalate", 1, "", 0), ("handle", 0, "", 0), ("carry_out", 0, "", 0), ("handle", 0, "", 0)])
async def test_the_load_routing_holds_is_always_the_open_tickets_each_agent_owns(
    store: RoutingStore, publisher: Publisher, rules: RulesInForce, steps: list[tuple[str, int, str, int]]
) -> None:
    await _empty(store)
    await store.put_agents(AGENTS)
    recorded = Recorded(publisher)
    handler = RouteTickets(rules, store, recorded)  # type: ignore[arg-type]
    desk = TicketService()
    last: list[Envelope[Any]] = []
    for action, which, person, other in steps:
        if action == "handle" and desk.unsent:
            last, desk.unsent = desk.unsent, []
            await handler(_deliveries(last))
        elif action == "redeliver":
            await handler(_deliveries(last))  # applied already: changes nothing
        elif action == "carry_out":
            for command in recorded.assignments:
                desk.carry_out(command)
            recorded.assignments.clear()
        else:
            desk.act(action, which, person, other)
        if not desk.unsent and not recorded.assignments:
            assert await _loads(store) == desk.loads(), steps
    while desk.unsent or recorded.assignments:  # routing catches up, and its commands are carried out
        if desk.unsent:
            last, desk.unsent = desk.unsent, []
            await handler(_deliveries(last))
        for command in recorded.assignments:
            desk.carry_out(command)
        recorded.assignments.clear()
    assert await _loads(store) == desk.loads()
    listed = {agent.agent_id: load for agent, load in await store.agents_with_loads() if load}
    assert listed == {a: n for a, n in desk.loads().items() if a != "x-4"}  # the API's figures, agents only


def _deliveries(events: list[Envelope[Any]]) -> list[Delivery[Any]]:
    return [Delivery(e, "helpdesk.tickets.events.v1", 0, n, str(e.ticket_id).encode()) for n, e in enumerate(events)]


async def _loads(store: RoutingStore) -> Counter[str]:
    async with store.changes() as tx:
        return Counter(await tx.loads())


async def _empty(store: RoutingStore) -> None:
    async with store.writer.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(delete(table))
