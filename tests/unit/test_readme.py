"""README tells a newcomer what the local run really does and which topics there are."""

from __future__ import annotations

import re
from pathlib import Path

from contracts.topics import ALL_TOPICS
from devtools import suite
from devtools.processes import DEFAULT_PORTS, Suite

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PROSE = re.sub(r"\s+", " ", README)


def test_readme_names_every_topic_of_the_registry_and_no_other() -> None:
    registry = {t.name for t in ALL_TOPICS}
    named = set(re.findall(r"helpdesk\.[a-z0-9_.-]+\.v\d+", README))
    assert named == registry


def test_readme_gives_the_local_runs_ports_and_escalation_time() -> None:
    [section] = re.findall(r"## The local run\n(.*?)\n## ", README, flags=re.S)
    section = re.sub(r"\s+", " ", section)
    local = Suite(state_dir=Path("var/suite"), kafka_bootstrap="127.0.0.1:19092")
    assert "`127.0.0.1:19092`" in section
    assert f"ports {min(DEFAULT_PORTS.values())}–{max(DEFAULT_PORTS.values())}" in section
    assert f"SMTP on {local.intake_smtp_port}" in section and f"e-mails on {local.smtp_port}" in section
    assert f"escalates: after {suite.ESCALATE_AFTER_S:.0f} s" in section


def test_readme_mints_a_token_the_way_that_works_against_the_local_run() -> None:
    for line in re.findall(r"^.*services\.tickets\.mint_token.*$", README, flags=re.M):
        preceding = README[: README.index(line)]
        assert "HELPDESK_DEVELOPMENT=true" in line or "export HELPDESK_DEVELOPMENT=true" in preceding[-300:], line
