"""The conditions a rule may put in its ``when``, table-tested; conflicts between rules and defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.routing.adapters.rules_file import load_rules
from services.routing.domain import TicketFacts, decide

RULES = """\
timezone: Europe/London
components: {sap: critical, vpn: high, printer: low}
priority:
  default: 3
  matrix:
    high:   {high: 1, medium: 2, low: 3}
    medium: {high: 2, medium: 3, low: 4}
    low:    {high: 3, medium: 4, low: 5}
  rules:
    - {name: critical-urgent, when: {criticality: [critical], urgency: [high]}, set: 1}
    - {name: ceo, when: {customers: [c-ceo]}, set: 2}
    - {name: level-3, when: {levels: [3]}, raise_by: 2}
    - {name: night-phone, when: {channels: [phone], hours: ["18:00-08:00"]}, raise_by: 1}
    - {name: weekend, when: {weekdays: [sat, sun]}, raise_by: 1}
    - {name: low-impact-low-crit, when: {impact: [low], criticality: [low]}, set: 5}
queues:
  default: L1-service-desk
  rules:
    - {name: major-incident, when: {priority: [1]}, queue: Major-incidents}
    - {name: german, when: {languages: [DE]}, queue: L1-german, skills: [SAP]}
    - {name: finance, when: {departments: [Finance]}, queue: L1-finance}
    - {name: vip, when: {vip: true}, queue: L1-vip}
"""

# Thursday 26 November 2026, London is on UTC in winter.
THURSDAY_NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = Path(tmp_path_factory.mktemp("rules")) / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return load_rules(path)


def decision(policy: Any, at: datetime = THURSDAY_NOON, **facts: Any) -> Any:
    return decide(policy, TicketFacts(**{"subject": "Help", "reported_at": at, **facts}))


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        # nothing matches: the matrix, or the default without impact/urgency
        ({}, (3, "default")),
        ({"impact": "low", "urgency": "low"}, (5, "matrix")),
        # criticality comes from the components list, any case; with urgency both must hold
        ({"components": ("SAP",), "urgency": "high", "impact": "low"}, (1, "critical-urgent")),
        ({"components": ("SAP",), "urgency": "low", "impact": "low"}, (5, "matrix")),
        ({"components": ("unknown",), "urgency": "high", "impact": "low"}, (3, "matrix")),
        # customer ids
        ({"customer_id": "c-ceo"}, (2, "ceo")),
        ({"customer_id": "c-other"}, (3, "default")),
        # support level (after an escalation)
        ({"level": 3, "impact": "low", "urgency": "low"}, (3, "level-3")),
        # impact list with criticality
        ({"impact": "low", "urgency": "high", "components": ("printer",)}, (5, "low-impact-low-crit")),
        # conflicts: the first rule in the file wins even when later rules match too
        ({"customer_id": "c-ceo", "components": ("sap",), "urgency": "high", "impact": "low"}, (1, "critical-urgent")),
        ({"customer_id": "c-ceo", "level": 3}, (2, "ceo")),
    ],
)
def test_priority_conditions(policy: Any, facts: dict[str, Any], expected: tuple[int, str]) -> None:
    d = decision(policy, **facts)
    assert (d.priority, d.priority_rule) == expected


@pytest.mark.parametrize(
    ("at", "channel", "expected"),
    [
        (datetime(2026, 11, 26, 12, 0, tzinfo=UTC), "phone", (3, "default")),
        (datetime(2026, 11, 26, 18, 0, tzinfo=UTC), "phone", (2, "night-phone")),  # the span includes its start
        (datetime(2026, 11, 26, 23, 30, tzinfo=UTC), "phone", (2, "night-phone")),  # past midnight
        (datetime(2026, 11, 27, 7, 59, tzinfo=UTC), "phone", (2, "night-phone")),
        (datetime(2026, 11, 27, 8, 0, tzinfo=UTC), "phone", (3, "default")),  # ...but not its end
        (datetime(2026, 11, 26, 23, 30, tzinfo=UTC), "email", (3, "default")),
        (datetime(2026, 11, 28, 12, 0, tzinfo=UTC), "email", (2, "weekend")),  # Saturday
        # Summer: 17:30 UTC is 18:30 in London
        (datetime(2026, 7, 1, 17, 30, tzinfo=UTC), "phone", (2, "night-phone")),
    ],
)
def test_time_of_day_and_weekday_are_read_in_the_rules_time_zone(
    policy: Any, at: datetime, channel: str, expected: tuple[int, str]
) -> None:
    d = decision(policy, at=at, channel=channel)
    assert (d.priority, d.priority_rule) == expected


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({}, ("L1-service-desk", "default", frozenset())),
        ({"impact": "high", "urgency": "high"}, ("Major-incidents", "major-incident", frozenset())),
        ({"language": "de"}, ("L1-german", "german", frozenset({"sap"}))),
        ({"language": "fr"}, ("L1-service-desk", "default", frozenset())),
        # a rule's language covers its regional forms (RFC 4647 basic filtering), not the other way round
        ({"language": "de-CH"}, ("L1-german", "german", frozenset({"sap"}))),
        ({"language": "den"}, ("L1-service-desk", "default", frozenset())),
        # queue rules see the priority the priority rules decided
        ({"customer_id": "c-ceo", "vip": True}, ("L1-vip", "vip", frozenset())),
        (
            {"components": ("sap",), "urgency": "medium", "vip": True, "language": "de"},
            ("L1-german", "german", frozenset({"sap"})),
        ),
        (
            {"components": ("sap",), "urgency": "high", "impact": "low", "vip": True},
            ("Major-incidents", "major-incident", frozenset()),
        ),
        ({"department": "finance", "vip": True}, ("L1-finance", "finance", frozenset())),
    ],
)
def test_queue_conditions_and_required_skills(
    policy: Any, facts: dict[str, Any], expected: tuple[str, str, frozenset[str]]
) -> None:
    d = decision(policy, **facts)
    assert (d.queue, d.queue_rule, d.skills) == expected


def test_the_explanation_lists_every_matching_rule_in_order_and_which_applied(policy: Any) -> None:
    d = decision(policy, customer_id="c-ceo", level=3, department="Finance", vip=True)
    assert [(m.kind, m.rule, m.applied) for m in d.matches] == [
        ("priority", "ceo", True),
        ("priority", "level-3", False),
        ("queue", "finance", True),
        ("queue", "vip", False),
    ]
    assert d.matches[0].why == "customer is 'c-ceo'"
    assert d.matches[1].why == "at support level 3"


def test_an_hours_condition_explains_the_time_it_saw(policy: Any) -> None:
    d = decision(policy, at=datetime(2026, 11, 26, 22, 15, tzinfo=UTC), channel="phone")
    assert (
        d.priority_reason
        == "reported by phone, at 22:15 (18:00-08:00): raised from 3 to 2 (no impact and urgency given: default priority 3)"
    )
