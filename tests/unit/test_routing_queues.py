"""Queues: the first matching queue rule, else the default queue; the decision says which and why."""

from __future__ import annotations

from typing import Any

import pytest

from services.routing.domain import (
    Conditions,
    PriorityMatrix,
    QueueRule,
    RoutingPolicy,
    TicketFacts,
    decide,
)

MATRIX = PriorityMatrix(cells={(i, u): 3 for i in ("high", "medium", "low") for u in ("high", "medium", "low")})
SECURITY = QueueRule("security", Conditions.of(keywords=["phishing", "data breach"]), "L2-security")
NETWORK = QueueRule("network", Conditions.of(components=["vpn", "WiFi"]), "L2-network")
FINANCE = QueueRule("finance", Conditions.of(departments=["Finance"]), "L1-finance", reason="month-end desk")
VIP_DESK = QueueRule("vip-desk", Conditions.of(vip=True), "L1-vip")
POLICY = RoutingPolicy(matrix=MATRIX, queue_rules=(SECURITY, NETWORK, FINANCE), default_queue="L1-service-desk")


def queue(policy: RoutingPolicy = POLICY, **facts: Any) -> tuple[str, str]:
    decision = decide(policy, TicketFacts(**{"subject": "Help", **facts}))
    return decision.queue, decision.queue_rule


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({}, ("L1-service-desk", "default")),
        ({"subject": "Phishing mail received"}, ("L2-security", "security")),
        ({"description": "possible DATA-breach"}, ("L2-security", "security")),
        ({"components": ("Printer", "wifi")}, ("L2-network", "network")),
        ({"department": "FINANCE"}, ("L1-finance", "finance")),
        # first matching rule wins
        ({"subject": "phishing over vpn", "components": ("vpn",), "department": "Finance"}, ("L2-security", "security")),
        ({"components": ("vpn",), "department": "Finance"}, ("L2-network", "network")),
        # near misses go to the default queue
        ({"components": ("vpn-client",)}, ("L1-service-desk", "default")),
        ({"department": "Financial Planning"}, ("L1-service-desk", "default")),
    ],
)
def test_queue_rules(facts: dict[str, Any], expected: tuple[str, str]) -> None:
    assert queue(**facts) == expected


def test_the_default_queue_is_the_policys() -> None:
    assert queue(RoutingPolicy(matrix=MATRIX, default_queue="Triage")) == ("Triage", "default")


def test_rule_order_not_specificity_decides() -> None:
    vip_first = RoutingPolicy(matrix=MATRIX, queue_rules=(VIP_DESK, SECURITY))
    assert queue(vip_first, subject="phishing", vip=True) == ("L1-vip", "vip-desk")
    security_first = RoutingPolicy(matrix=MATRIX, queue_rules=(SECURITY, VIP_DESK))
    assert queue(security_first, subject="phishing", vip=True) == ("L2-security", "security")


def test_the_queue_decision_says_why() -> None:
    decision = decide(POLICY, TicketFacts(subject="x", department="Finance"))
    assert decision.queue_reason == "month-end desk; customer's department is 'finance'"
    decision = decide(POLICY, TicketFacts(subject="x", components=("VPN",)))
    assert decision.queue_reason == "component 'vpn'"
    decision = decide(POLICY, TicketFacts(subject="x"))
    assert decision.queue_reason == "no queue rule matched: default queue"
