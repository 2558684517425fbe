"""Priority: the ITIL matrix, then the first matching priority rule; every decision names its rule and why."""

from __future__ import annotations

import time
from typing import Any

import pytest

from services.routing.domain import (
    Conditions,
    PriorityMatrix,
    PriorityRule,
    RoutingPolicy,
    TicketFacts,
    decide,
)

ITIL = PriorityMatrix(
    cells={
        ("high", "high"): 1, ("high", "medium"): 2, ("high", "low"): 3,
        ("medium", "high"): 2, ("medium", "medium"): 3, ("medium", "low"): 4,
        ("low", "high"): 3, ("low", "medium"): 4, ("low", "low"): 5,
    },
    default=3,
)


def ticket(**facts: Any) -> TicketFacts:
    return TicketFacts(**{"subject": "Something is wrong", **facts})


def priority(policy: RoutingPolicy, **facts: Any) -> tuple[int, str]:
    decision = decide(policy, ticket(**facts))
    return decision.priority, decision.priority_rule


MATRIX_ONLY = RoutingPolicy(matrix=ITIL)


@pytest.mark.parametrize(
    ("impact", "urgency", "expected"),
    [
        ("high", "high", 1), ("high", "medium", 2), ("high", "low", 3),
        ("medium", "high", 2), ("medium", "medium", 3), ("medium", "low", 4),
        ("low", "high", 3), ("low", "medium", 4), ("low", "low", 5),
    ],
)
def test_the_matrix_gives_the_priority_of_impact_and_urgency(impact: str, urgency: str, expected: int) -> None:
    decision = decide(MATRIX_ONLY, ticket(impact=impact, urgency=urgency))
    assert (decision.priority, decision.priority_rule) == (expected, "matrix")
    assert decision.priority_reason == f"impact {impact} x urgency {urgency}: priority {expected}"


@pytest.mark.parametrize(
    ("impact", "urgency", "missing"),
    [(None, None, "impact and urgency"), ("high", None, "urgency"), (None, "high", "impact")],
)
def test_without_impact_or_urgency_the_default_priority_applies(impact: str | None, urgency: str | None, missing: str) -> None:
    decision = decide(MATRIX_ONLY, ticket(impact=impact, urgency=urgency))
    assert (decision.priority, decision.priority_rule) == (3, "default")
    assert decision.priority_reason == f"no {missing} given: default priority 3"


def test_the_default_priority_is_the_files() -> None:
    policy = RoutingPolicy(matrix=PriorityMatrix(cells=ITIL.cells, default=4))
    assert priority(policy) == (4, "default")


OUTAGE = PriorityRule("business-down", Conditions.of(keywords=["outage", "business down"]), set_to=1,
                      reason="the business cannot work")
VIP = PriorityRule("vip", Conditions.of(vip=True), raise_by=1)
VIP_TWICE = PriorityRule("vip-twice", Conditions.of(vip=True), raise_by=2)
PASSWORD = PriorityRule("password", Conditions.of(keywords=["password reset"]), set_to=5)
VPN = PriorityRule("vpn", Conditions.of(components=["VPN"]), set_to=2)
CHAT = PriorityRule("chat", Conditions.of(channels=["chat"]), set_to=4)
FINANCE = PriorityRule("finance", Conditions.of(departments=["Finance"]), set_to=2)
VIP_OUTAGE = PriorityRule("vip-outage", Conditions.of(keywords=["outage"], vip=True), set_to=1)
POLICY = RoutingPolicy(matrix=ITIL, priority_rules=(OUTAGE, VIP, PASSWORD, VPN))


@pytest.mark.parametrize(
    ("policy", "facts", "expected"),
    [
        # keywords: whole words or phrases, any case, any punctuation, subject or description
        (POLICY, {"subject": "Outage in Leeds"}, (1, "business-down")),
        (POLICY, {"description": "we have an OUTAGE!"}, (1, "business-down")),
        (POLICY, {"subject": "Business-down since 9am"}, (1, "business-down")),
        (POLICY, {"subject": "business\n  down"}, (1, "business-down")),
        (POLICY, {"subject": "outages are a word we do not match"}, (3, "default")),
        (POLICY, {"subject": "the business", "description": "is down"}, (3, "default")),
        # first matching rule wins: outage before VIP, VIP before password reset
        (POLICY, {"subject": "outage", "vip": True}, (1, "business-down")),
        (POLICY, {"subject": "password reset please", "vip": True}, (2, "vip")),
        (POLICY, {"subject": "password reset please"}, (5, "password")),
        (RoutingPolicy(matrix=ITIL, priority_rules=(PASSWORD, OUTAGE)),
         {"subject": "outage: password reset broken"}, (5, "password")),
        # raise_by counts down from the matrix, never past 1
        (POLICY, {"vip": True, "impact": "low", "urgency": "low"}, (4, "vip")),
        (POLICY, {"vip": True, "impact": "high", "urgency": "high"}, (1, "vip")),
        (RoutingPolicy(matrix=ITIL, priority_rules=(VIP_TWICE,)), {"vip": True, "impact": "medium", "urgency": "high"},
         (1, "vip-twice")),
        # components any case; channels; departments any case
        (POLICY, {"components": ("printer", "vpn")}, (2, "vpn")),
        (RoutingPolicy(matrix=ITIL, priority_rules=(CHAT,)), {"channel": "chat"}, (4, "chat")),
        (RoutingPolicy(matrix=ITIL, priority_rules=(CHAT,)), {"channel": "email"}, (3, "default")),
        (RoutingPolicy(matrix=ITIL, priority_rules=(FINANCE,)), {"department": " finance "}, (2, "finance")),
        (RoutingPolicy(matrix=ITIL, priority_rules=(FINANCE,)), {"department": None}, (3, "default")),
        # all conditions of a rule must hold
        (RoutingPolicy(matrix=ITIL, priority_rules=(VIP_OUTAGE,)), {"subject": "outage"}, (3, "default")),
        (RoutingPolicy(matrix=ITIL, priority_rules=(VIP_OUTAGE,)), {"subject": "outage", "vip": True}, (1, "vip-outage")),
        # no rule matches: the matrix stands
        (POLICY, {"impact": "low", "urgency": "medium"}, (4, "matrix")),
    ],
)
def test_priority_rules(policy: RoutingPolicy, facts: dict[str, Any], expected: tuple[int, str]) -> None:
    assert priority(policy, **facts) == expected


def test_a_rule_says_what_matched_and_what_it_changed() -> None:
    decision = decide(POLICY, ticket(subject="Outage", description="business down", impact="medium", urgency="high"))
    assert decision.priority_reason == (
        "the business cannot work; mentions 'business down' and 'outage': priority 1 "
        "(impact medium x urgency high: priority 2)"
    )
    raised = decide(POLICY, ticket(vip=True))
    assert raised.priority_reason == "customer is VIP: raised from 3 to 2 (no impact and urgency given: default priority 3)"


def test_two_hundred_rules_decide_thousands_of_tickets_a_second() -> None:
    rules = tuple(
        PriorityRule(f"rule-{i}", Conditions.of(keywords=[f"word{i}", f"two words{i}"], components=[f"c{i}"]), set_to=2)
        for i in range(200)
    )
    policy = RoutingPolicy(matrix=ITIL, priority_rules=rules)
    facts = ticket(subject="The VPN drops, two words199", description="Lorem ipsum, dolor sit amet. " * 40,
                   components=("C199",), impact="medium", urgency="medium")
    started = time.perf_counter()
    for _ in range(1000):
        decision = decide(policy, facts)
    per_second = 1000 / (time.perf_counter() - started)
    assert decision.priority_rule == "rule-199"
    # The bench wants 5,000/s; this machine-independent floor only catches a gross regression.
    assert per_second > 2000, f"only {per_second:.0f} decisions/s"
