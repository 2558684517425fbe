"""The desk: decisions on opened tickets, reconsideration on replies and escalations, overrides kept, loads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from contracts.commands import AssignTicket, RouteTicket
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import CustomerProfile
from contracts.tickets import (
    TicketAssigned,
    TicketAssignedData,
    TicketClaimed,
    TicketClaimedData,
    TicketCustomerReplied,
    TicketCustomerRepliedData,
    TicketEscalated,
    TicketEscalatedData,
    TicketOpened,
    TicketOpenedData,
    TicketPrioritised,
    TicketPrioritisedData,
    TicketReleased,
    TicketReleasedData,
    TicketReopened,
    TicketReopenedData,
    TicketResolved,
    TicketResolvedData,
)
from services.routing.assignment import Agent, Roster
from services.routing.desk import Desk
from services.routing.domain import (
    ROUTING_NAMESPACE,
    Conditions,
    PriorityMatrix,
    PriorityRule,
    QueueRule,
    RoutingPolicy,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MATRIX = PriorityMatrix(cells={(i, u): 3 for i in ("high", "medium", "low") for u in ("high", "medium", "low")})
POLICY = RoutingPolicy(
    matrix=MATRIX,
    priority_rules=(
        PriorityRule("outage", Conditions.of(keywords=["outage"]), set_to=1),
        PriorityRule("level-2", Conditions.of(levels=[2]), raise_by=1),
    ),
    queue_rules=(QueueRule("network", Conditions.of(keywords=["vpn"]), "L2-network", skills=frozenset({"vpn"})),),
    strategies={"L2-network": "least_loaded", "L2-escalated": "round_robin"},
)
AGENTS = {
    "net-1": Agent("net-1", skills=frozenset({"vpn"}), queues=frozenset({"L2-network"})),
    "esc-1": Agent("esc-1", queues=frozenset({"L2-escalated"})),
}


def desk(views: dict[uuid.UUID, Any] | None = None, roster: Roster | None = None) -> Desk:
    return Desk(POLICY, roster or Roster(AGENTS), views if views is not None else {}, NOW)


def event(model: type[Envelope[Any]], data: Any, ticket_id: uuid.UUID) -> Envelope[Any]:
    return new_envelope(model, data, ticket_id=ticket_id, correlation_id="trace")


def opened(ticket_id: uuid.UUID, subject: str = "Printer jam") -> Envelope[Any]:
    data = TicketOpenedData(
        number="HD-1",
        version=1,
        channel="email",
        channel_message_id="m-1",
        reported_at=NOW,
        subject=subject,
        description="",
        customer=CustomerProfile(identified=False),
    )
    return event(TicketOpened, data, ticket_id)


def reply(ticket_id: uuid.UUID, text: str, version: int = 4) -> Envelope[Any]:
    data = TicketCustomerRepliedData(
        number="HD-1", version=version, channel="email", channel_message_id="m-2", received_at=NOW, text=text
    )
    return event(TicketCustomerReplied, data, ticket_id)


def prioritised(ticket_id: uuid.UUID, priority: int, by: str) -> Envelope[Any]:
    data = TicketPrioritisedData(
        number="HD-1", version=5, priority=priority, rule="manual", reason="customer is the CFO", by=by
    )
    return event(TicketPrioritised, data, ticket_id)


def test_an_opened_ticket_gets_a_route_command_whose_id_follows_from_the_event() -> None:
    ticket_id = uuid.uuid4()
    cause = opened(ticket_id, "VPN outage")
    d = desk()
    d.apply(cause)
    route, assign = d.commands
    assert isinstance(route, RouteTicket) and isinstance(assign, AssignTicket)
    assert route.event_id == uuid.uuid5(ROUTING_NAMESPACE, f"route:{cause.event_id}")
    assert (route.data.priority, route.data.queue) == (1, "L2-network")
    assert assign.event_id == uuid.uuid5(ROUTING_NAMESPACE, f"assign:{cause.event_id}")
    assert (assign.data.agent_id, assign.data.strategy) == ("net-1", "least_loaded")
    [explanation] = d.explanations
    assert explanation.notes == (
        "assigned to net-1: least loaded (0 open) of 1 agents of 'L2-network' with skills vpn",
    )
    assert d.roster.loads == {"net-1": 1}


def test_a_customer_reply_with_new_words_reroutes_the_ticket() -> None:
    ticket_id = uuid.uuid4()
    d = desk()
    d.apply(opened(ticket_id))
    assert [type(c) for c in d.commands] == [RouteTicket]  # the default queue is pull
    d.apply(reply(ticket_id, "and now the VPN is down too: total outage"))
    rerouted = d.commands[1]
    assert isinstance(rerouted, RouteTicket)
    assert (rerouted.data.priority, rerouted.data.queue) == (1, "L2-network")
    assert isinstance(d.commands[2], AssignTicket)
    assert d.explanations[-1].notes[0] == "re-evaluated: the customer replied"


def test_a_reply_that_changes_nothing_sends_nothing_but_is_explained() -> None:
    ticket_id = uuid.uuid4()
    d = desk()
    d.apply(opened(ticket_id))
    d.apply(reply(ticket_id, "still jammed"))
    assert len(d.commands) == 1
    assert d.explanations[-1].command_sent is False


def test_a_human_override_is_never_undone_and_the_explanation_says_so() -> None:
    ticket_id = uuid.uuid4()
    d = desk()
    d.apply(opened(ticket_id))
    d.apply(prioritised(ticket_id, 4, by="agent-7"))
    d.apply(reply(ticket_id, "we have an outage"))
    assert all(c.data.priority == 4 for c in d.commands[1:] if isinstance(c, RouteTicket))
    notes = d.explanations[-1].notes
    assert notes[1] == (
        "priority 4 kept: a human override (set to 4 by agent-7: customer is the CFO); the rules would give 1 (outage)"
    )
    assert d.views[ticket_id].priority == 4


def test_routings_own_prioritised_event_is_not_an_override() -> None:
    ticket_id = uuid.uuid4()
    d = desk()
    d.apply(opened(ticket_id))
    d.apply(prioritised(ticket_id, 3, by="routing"))
    d.apply(reply(ticket_id, "outage"))
    assert d.commands[-1].data.priority == 1


def test_an_escalation_keeps_its_queue_reconsiders_priority_and_assigns_in_the_new_queue() -> None:
    ticket_id = uuid.uuid4()
    d = desk()
    d.apply(opened(ticket_id))
    escalated = event(
        TicketEscalated,
        TicketEscalatedData(number="HD-1", version=4, level=2, queue="L2-escalated", reason="unclaimed for 15 min"),
        ticket_id,
    )
    d.apply(escalated)
    route, assign = d.commands[1:]
    assert isinstance(route, RouteTicket) and (route.data.priority, route.data.queue) == (2, "L2-escalated")
    assert route.data.priority_rule == "level-2"
    assert isinstance(assign, AssignTicket) and assign.data.agent_id == "esc-1"


def test_claims_assignments_and_resolutions_move_the_agents_loads_once() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    d = desk(roster=Roster(AGENTS))
    d.apply(opened(a))
    d.apply(opened(b))
    d.apply(event(TicketClaimed, TicketClaimedData(number="HD-1", version=3, agent_id="x"), a))
    d.apply(
        event(
            TicketAssigned, TicketAssignedData(number="HD-2", version=3, agent_id="y", strategy="direct", reason="r"), b
        )
    )
    d.apply(event(TicketClaimed, TicketClaimedData(number="HD-2", version=4, agent_id="y"), b))
    assert d.roster.loads == {"x": 1, "y": 1}
    d.apply(event(TicketResolved, TicketResolvedData(number="HD-1", version=4, resolution="done", resolved_by="x"), a))
    assert d.roster.loads == {"x": 0, "y": 1}
    # A claimed ticket is not re-assigned when it escalates, and a resolved one is not reconsidered.
    d.apply(reply(a, "outage"))
    assert all(c.ticket_id != a for c in d.commands[2:])


def test_a_release_takes_the_load_off_its_agent_and_a_reopening_puts_it_back() -> None:
    a = uuid.uuid4()
    d = desk(roster=Roster(AGENTS))
    d.apply(opened(a))
    d.apply(event(TicketClaimed, TicketClaimedData(number="HD-1", version=3, agent_id="x"), a))
    released = TicketReleasedData(number="HD-1", version=4, released_by="x", previous_assignee="x")
    d.apply(event(TicketReleased, released, a))
    assert d.roster.loads == {"x": 0}
    d.apply(event(TicketClaimed, TicketClaimedData(number="HD-1", version=5, agent_id="y"), a))
    d.apply(event(TicketResolved, TicketResolvedData(number="HD-1", version=6, resolution="done", resolved_by="y"), a))
    assert d.roster.loads == {"x": 0, "y": 0}
    d.apply(event(TicketReopened, TicketReopenedData(number="HD-1", version=7, reason="again", reopened_by="c"), a))
    assert d.roster.loads == {"x": 0, "y": 1}


def test_a_ticket_held_by_an_agent_is_not_given_to_another_when_it_escalates() -> None:
    a = uuid.uuid4()
    d = desk(roster=Roster(AGENTS))
    d.apply(opened(a))
    given = TicketAssignedData(number="HD-1", version=3, agent_id="x", strategy="direct", reason="on call")
    d.apply(event(TicketAssigned, given, a))
    escalated = TicketEscalatedData(number="HD-1", version=4, level=2, queue="L2-escalated", reason="late")
    d.apply(event(TicketEscalated, escalated, a))
    assert not any(isinstance(c, AssignTicket) for c in d.commands)
    assert d.roster.loads == {"x": 1}


def named_policy(queue_strategy: str = "pull") -> RoutingPolicy:
    rule = QueueRule("ceo-desk", Conditions.of(keywords=["ceo"]), "L2-network", assign_to="esc-1")
    return RoutingPolicy(matrix=MATRIX, queue_rules=(rule,), strategies={"L2-network": queue_strategy})


def test_a_queue_rule_naming_an_agent_gives_them_the_ticket_and_the_explanation_says_so() -> None:
    ticket_id = uuid.uuid4()
    d = Desk(named_policy(), Roster(AGENTS), {}, NOW)
    d.apply(opened(ticket_id, "The CEO cannot print"))
    route, assign = d.commands
    assert isinstance(assign, AssignTicket)
    assert (assign.data.agent_id, assign.data.strategy) == ("esc-1", "direct")
    assert assign.event_id == uuid.uuid5(ROUTING_NAMESPACE, f"assign:{d.explanations[0].cause_id}")
    explained = d.explanations[0].as_json()
    assert explained["assign_to"] == "esc-1"
    assert explained["notes"] == ["assigned to esc-1: queue rule 'ceo-desk' gives it to esc-1"]
    assert d.roster.loads == {"esc-1": 1}


def test_a_named_agent_who_is_not_available_leaves_the_ticket_to_the_queues_strategy() -> None:
    ticket_id = uuid.uuid4()
    off = {**AGENTS, "esc-1": Agent("esc-1", queues=frozenset({"L2-escalated"}), available=False)}
    d = Desk(named_policy("least_loaded"), Roster(off), {}, NOW)
    d.apply(opened(ticket_id, "The CEO cannot print"))
    assign = d.commands[-1]
    assert isinstance(assign, AssignTicket)
    assert (assign.data.agent_id, assign.data.strategy) == ("net-1", "least_loaded")
    assert d.explanations[0].notes[0].startswith(
        "assigned to net-1: esc-1, named by queue rule 'ceo-desk', is not available; least loaded"
    )


def test_a_human_priority_change_reroutes_by_the_queue_rules_that_depend_on_priority() -> None:
    policy = RoutingPolicy(
        matrix=MATRIX,
        queue_rules=(QueueRule("major", Conditions.of(priorities=[1]), "Major-incidents"),),
    )
    ticket_id = uuid.uuid4()
    d = Desk(policy, Roster(AGENTS), {}, NOW)
    d.apply(opened(ticket_id))
    assert d.commands[0].data.queue == "L1-service-desk"
    d.apply(prioritised(ticket_id, 1, by="lead-1"))
    rerouted = d.commands[1]
    assert isinstance(rerouted, RouteTicket)
    assert (rerouted.data.priority, rerouted.data.priority_rule, rerouted.data.queue) == (
        1,
        "manual",
        "Major-incidents",
    )
    assert d.explanations[-1].notes[0] == "re-evaluated: priority set to 1 by lead-1"
