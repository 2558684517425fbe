"""The rules file: the shipped one works; every mistake is reported as file:line: where: what."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.routing.adapters.rules_file import KnownAgents, RulesFileError, load_rules
from services.routing.domain import TicketFacts, decide

SHIPPED = Path(__file__).resolve().parents[2] / "services" / "routing" / "rules.yaml"

BASE = """\
priority:
  default: 3
  matrix:
    high:   {high: 1, medium: 2, low: 3}
    medium: {high: 2, medium: 3, low: 4}
    low:    {high: 3, medium: 4, low: 5}
  rules:
    - name: outage
      when:
        keywords: [outage]
      set: 1
queues:
  default: L1-service-desk
  rules:
    - name: network
      when:
        components: [vpn]
      queue: L2-network
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(RulesFileError) as raised:
        load_rules(path)
    return [p.removeprefix(f"{path}:") for p in raised.value.problems]


def test_the_shipped_rules_load_with_the_itil_matrix() -> None:
    policy = load_rules(SHIPPED)
    expected = {
        ("high", "high"): 1, ("high", "medium"): 2, ("high", "low"): 3,
        ("medium", "high"): 2, ("medium", "medium"): 3, ("medium", "low"): 4,
        ("low", "high"): 3, ("low", "medium"): 4, ("low", "low"): 5,
    }
    assert dict(policy.matrix.cells) == expected
    assert (policy.matrix.default, policy.default_queue) == (3, "L1-service-desk")
    assert policy.priority_rules and policy.queue_rules


def test_the_shipped_rules_route_a_vpn_outage_to_the_network_team_at_priority_1() -> None:
    decision = decide(load_rules(SHIPPED), TicketFacts(subject="VPN outage", components=("vpn",)))
    assert (decision.priority, decision.priority_rule, decision.queue, decision.queue_rule) == (
        1, "business-down", "L2-network", "vpn"
    )


def test_a_good_file_loads(tmp_path: Path) -> None:
    policy = load_rules(write(tmp_path, BASE))
    assert [r.name for r in policy.priority_rules] == ["outage"]
    assert [(r.name, r.queue) for r in policy.queue_rules] == [("network", "L2-network")]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("      set: 1\n", "      set: 7\n", "11: priority.rules[0].set: Input should be less than or equal to 5"),
        ("      set: 1\n", "      set: '1'\n", "11: priority.rules[0].set: Input should be a valid integer"),
        ("      set: 1\n", "      set: 1\n      raise_by: 1\n",
         "8: priority.rules[0]: give exactly one of 'set: <1-5>' or 'raise_by: <1-4>'"),
        ("      set: 1\n", "", "8: priority.rules[0]: give exactly one of 'set: <1-5>' or 'raise_by: <1-4>'"),
        ("        keywords: [outage]\n", "        keyword: [outage]\n",
         "10: priority.rules[0].when.keyword: Extra inputs are not permitted"),
        ("        keywords: [outage]\n", "        keywords: []\n",
         "9: priority.rules[0].when: 'when' needs at least one of keywords, components, criticality, departments, "
         "customers, channels, languages, impact, urgency, levels, hours, weekdays, vip"),
        ("        keywords: [outage]\n", "        keywords: ['!!!']\n",
         "10: priority.rules[0].when.keywords: keyword '!!!' has no letters or digits; keywords match whole words"),
        ("        keywords: [outage]\n", "        channels: [pigeon]\n",
         "10: priority.rules[0].when.channels[0]: Input should be 'email', 'chat', 'sms', 'social', 'mobile', "
         "'phone', 'web' or 'integration'"),
        ("        keywords: [outage]\n", "        vip: 'yes'\n", "10: priority.rules[0].when.vip: Input should be a valid boolean"),
        ("    low:    {high: 3, medium: 4, low: 5}\n", "    low:    {high: 3, medium: 4}\n",
         "6: priority.matrix.low.low: Field required"),
        ("    low:    {high: 3, medium: 4, low: 5}\n", "", "3: priority.matrix.low: Field required"),
        ("    - name: outage\n", "    - name: default\n",
         "8: priority.rules[0].name: 'default' is reserved for decisions no rule made; choose another name"),
        ("      queue: L2-network\n", "", "15: queues.rules[0].queue: Field required"),
        ("  default: L1-service-desk\n", "  default: ''\n", "13: queues.default: String should have at least 1 character"),
    ],
)
def test_a_mistake_is_reported_with_its_line(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in BASE
    assert problems(tmp_path, BASE.replace(old, new)) == [expected]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("        keywords: [outage]\n", "        hours: ['9-17']\n",
         "10: priority.rules[0].when.hours: hours '9-17': write a span as 'HH:MM-HH:MM', e.g. '18:00-08:00'"),
        ("        keywords: [outage]\n", "        weekdays: [friday]\n",
         "10: priority.rules[0].when.weekdays[0]: Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'"),
        ("        keywords: [outage]\n", "        criticality: [urgent]\n",
         "10: priority.rules[0].when.criticality[0]: Input should be 'critical', 'high', 'medium' or 'low'"),
        ("        keywords: [outage]\n", "        priority: [1]\n",
         "10: priority.rules[0].when.priority: Extra inputs are not permitted"),
        ("        components: [vpn]\n", "        priority: [0]\n",
         "17: queues.rules[0].when.priority[0]: Input should be greater than or equal to 1"),
        ("priority:\n", "timezone: Mars/Olympus\npriority:\n",
         "1: timezone: unknown time zone 'Mars/Olympus'; use an IANA name such as 'Europe/London'"),
        ("priority:\n", "components: {sap: vital}\npriority:\n",
         "1: components.sap: Input should be 'critical', 'high', 'medium' or 'low'"),
        ("  default: L1-service-desk\n", "  default: L1-service-desk\n  assignment: {L2-network: random}\n",
         "14: queues.assignment.L2-network: Input should be 'pull', 'round_robin' or 'least_loaded'"),
        ("      queue: L2-network\n", "      queue: L2-network\n      skills: vpn\n",
         "19: queues.rules[0].skills: Input should be a valid list"),
    ],
)
def test_a_mistake_in_the_newer_conditions_is_reported_with_its_line(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in BASE
    assert problems(tmp_path, BASE.replace(old, new, 1)) == [expected]


def test_the_shipped_rules_name_strategies_components_and_skills() -> None:
    policy = load_rules(SHIPPED)
    assert policy.strategy("L2-network") == "least_loaded"
    assert policy.strategy("L1-service-desk") == "pull"
    assert policy.criticality["sap"] == "critical"
    assert policy.timezone == "Europe/London"


def test_a_duplicate_rule_name_names_both_lines(tmp_path: Path) -> None:
    text = BASE + "    - name: Network\n      when: {keywords: [wifi]}\n      queue: L2-network\n"
    assert problems(tmp_path, text) == [
        "19: queues.rules[1].name: 'Network' is already the name of the rule at line 15; rule names must be unique"
    ]


def test_every_mistake_is_reported_at_once(tmp_path: Path) -> None:
    text = BASE.replace("set: 1", "set: 0").replace("components: [vpn]", "components: vpn")
    assert problems(tmp_path, text) == [
        "11: priority.rules[0].set: Input should be greater than or equal to 1",
        "17: queues.rules[0].when.components: Input should be a valid list",
    ]


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, BASE.replace("keywords: [outage]", "keywords: [outage"))
    assert problem.startswith("11: not valid YAML/JSON")


def test_a_file_without_sections_is_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == ["1: expected a mapping with 'priority' and 'queues' sections"]
    assert problems(tmp_path, "queues: {}\n") == ["1: priority: Field required"]


NAMED = BASE + """\
    - name: ceo-desk
      when:
        customers: [u-1]
      queue: L2-vip
      assign_to: alice
"""


def test_a_queue_rule_may_name_an_agent_of_the_agents_file(tmp_path: Path) -> None:
    agents = KnownAgents({"alice"}, tmp_path / "agents.yaml")
    policy = load_rules(write(tmp_path, NAMED), agents)
    decision = decide(policy, TicketFacts(subject="Laptop", customer_id="u-1"))
    assert (decision.queue, decision.queue_rule, decision.assign_to) == ("L2-vip", "ceo-desk", "alice")
    assert decide(policy, TicketFacts(subject="Laptop", customer_id="u-2")).assign_to is None


def test_a_rule_naming_an_agent_the_agents_file_lacks_is_reported_with_its_line(tmp_path: Path) -> None:
    agents_file = tmp_path / "agents.yaml"
    path = write(tmp_path, NAMED)
    with pytest.raises(RulesFileError) as raised:
        load_rules(path, KnownAgents({"bob"}, agents_file))
    assert raised.value.problems == [
        f"{path}:23: queues.rules[1].assign_to: 'alice' is not an agent of the agents file {agents_file}"
    ]
    with pytest.raises(RulesFileError, match="no agents file is configured"):
        load_rules(path, KnownAgents(set(), None))
