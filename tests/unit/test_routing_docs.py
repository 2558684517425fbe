"""The rules docs/routing.md shows team leads load, and behave as the page says."""

from __future__ import annotations

import re
from pathlib import Path

from services.routing.adapters.rules_file import load_rules
from services.routing.domain import TicketFacts, decide

DOC = (Path(__file__).resolve().parents[2] / "docs" / "routing.md").read_text(encoding="utf-8")


def test_the_documented_rules_file_loads_and_decides_as_described(tmp_path: Path) -> None:
    [example] = [b for b in re.findall(r"```yaml\n(.*?)```", DOC, flags=re.S) if b.startswith("version: 1")]
    path = tmp_path / "rules.yaml"
    path.write_text(example, encoding="utf-8")
    policy = load_rules(path)

    outage = decide(policy, TicketFacts(subject="Outage", impact="medium", urgency="high", components=("VPN",)))
    assert (outage.priority, outage.priority_rule, outage.queue) == (1, "business-down", "L2-network")
    vip = decide(policy, TicketFacts(subject="Mouse broken", vip=True, department="finance"))
    assert (vip.priority, vip.priority_rule, vip.queue) == (2, "vip-customer", "L1-finance-desk")
    for reason in (outage.priority_reason, vip.priority_reason):
        assert reason in DOC
