"""The rules docs/routing.md shows team leads load, and behave as the page says."""

from __future__ import annotations

import re
from pathlib import Path

from services.routing.adapters.agents_file import load_agents
from services.routing.adapters.rules_file import KnownAgents, load_rules
from services.routing.domain import TicketFacts, decide

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "routing.md").read_text(encoding="utf-8")
SHIPPED_AGENTS = ROOT / "services" / "routing" / "agents.yaml"


def test_the_documented_rules_file_loads_and_decides_as_described(tmp_path: Path) -> None:
    [example] = [b for b in re.findall(r"```yaml\n(.*?)```", DOC, flags=re.S) if b.startswith("version: 1")]
    path = tmp_path / "rules.yaml"
    path.write_text(example, encoding="utf-8")
    agents = KnownAgents({a.agent_id for a in load_agents(SHIPPED_AGENTS)}, SHIPPED_AGENTS)
    policy = load_rules(path, agents)

    outage = decide(policy, TicketFacts(subject="Outage", impact="medium", urgency="high", components=("VPN",)))
    assert (outage.priority, outage.priority_rule, outage.queue) == (1, "business-down", "L2-network")
    vip = decide(policy, TicketFacts(subject="Mouse broken", vip=True, department="finance"))
    assert (vip.priority, vip.priority_rule, vip.queue) == (2, "vip-customer", "L1-finance-desk")
    for reason in (outage.priority_reason, vip.priority_reason):
        assert reason in DOC
    ceo = decide(policy, TicketFacts(subject="Laptop", customer_id="u-1001"))
    assert (ceo.queue, ceo.assign_to) == ("L2-vip", "agent-2")
