"""The agents file: the shipped one loads; mistakes are reported as file:line: where: what."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.routing.adapters.agents_file import AgentsFileError, load_agents
from services.routing.adapters.rules_file import load_rules

ROUTING = Path(__file__).resolve().parents[2] / "services" / "routing"


def test_the_shipped_agents_work_the_queues_the_shipped_rules_assign() -> None:
    agents = load_agents(ROUTING / "agents.yaml")
    policy = load_rules(ROUTING / "rules.yaml")
    assigned_queues = {q for q in policy.strategies if policy.strategy(q) != "pull"}
    assert assigned_queues and all(any(q in a.queues for a in agents) for q in assigned_queues)
    net = {a.agent_id: a for a in agents}["net-1"]
    assert ("vpn" in net.skills, net.level, net.available) == (True, 2, True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("agents:\n  - id: a\n    level: 0\n", ["3: agents[0].level: Input should be greater than or equal to 1"]),
        ("agents:\n  - id: a\n    skill: [vpn]\n", ["3: agents[0].skill: Extra inputs are not permitted"]),
        ("agents:\n  - id: a\n  - id: b\n  - id: a\n", ["4: agents[2].id: 'a' is already the agent at line 2"]),
        ("agents:\n  - skills: [vpn]\n", ["2: agents[0].id: Field required"]),
    ],
)
def test_a_mistake_is_reported_with_its_line(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AgentsFileError) as raised:
        load_agents(path)
    assert [p.removeprefix(f"{path}:") for p in raised.value.problems] == expected
