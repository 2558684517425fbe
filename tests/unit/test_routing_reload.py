"""Reloading the rules file: a valid edit takes over, an invalid one is reported and the old rules stay."""

from __future__ import annotations

import os
from pathlib import Path

from services.routing.reload import RulesInForce

RULES = """\
priority:
  matrix:
    high:   {high: 1, medium: 2, low: 3}
    medium: {high: 2, medium: 3, low: 4}
    low:    {high: 3, medium: 4, low: 5}
  rules:
    - {name: outage, when: {keywords: [outage]}, set: 1}
"""


def edit(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a visibly newer file


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    rules = RulesInForce(path)
    assert rules.check() is False
    assert rules.status()["file_valid"] is True


def test_an_invalid_edit_keeps_the_rules_in_force_until_a_valid_one(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    rules = RulesInForce(path)
    before = rules.policy

    edit(path, RULES.replace("set: 1", "set: 0"))
    assert rules.check() is False
    assert rules.policy is before
    status = rules.status()
    assert status["file_valid"] is False
    assert status["errors"] == [f"{path}:7: priority.rules[0].set: Input should be greater than or equal to 1"]

    edit(path, RULES.replace("set: 1", "set: 2"))
    assert rules.check() is True
    assert rules.policy.priority_rules[0].set_to == 2
    assert rules.status()["errors"] == []


def test_a_deleted_file_is_reported_and_the_rules_stay(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    rules = RulesInForce(path)
    path.unlink()
    assert rules.check() is False
    assert rules.policy.priority_rules[0].name == "outage"
    [problem] = rules.status()["errors"]
    assert problem.startswith(f"{path}: cannot read")
