"""The figures docs/escalation.md gives are the ones the code and the local run use."""

from __future__ import annotations

import inspect
import re
from datetime import timedelta
from pathlib import Path

from devtools import suite
from services.escalation.adapters.store import DeadlineStore
from services.escalation.config import Settings
from services.escalation.domain.breaches import _spoken
from services.escalation.policies_file import load_policies, parse_duration
from services.escalation.rebuild import LOG_EVERY_S
from services.escalation.timer import RESEND_AFTER
from tests.e2e import test_suite_end_to_end

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "escalation.md").read_text(encoding="utf-8")
PROSE = re.sub(r"\s+", " ", GUIDE)  # sentences wrap across lines


def _settings_table() -> dict[str, str]:
    rows = re.findall(r"^\| `(ESCALATION_[A-Z_]+)` \| ([^|]+) \|", GUIDE, flags=re.M)
    return {name: default.strip() for name, default in rows}


def test_the_guide_gives_the_unclaimed_time_the_local_run_and_the_end_to_end_test_really_set() -> None:
    [local] = re.findall(r"The local run \(`scripts/run`\) sets it to (\d+)", PROSE)
    assert float(local) == suite.ESCALATE_AFTER_S
    assert f"escalates after {local} s" in PROSE
    [e2e] = re.findall(r"`tests/e2e/test_suite_end_to_end.py` sets (\d+)", PROSE)
    assert float(e2e) == test_suite_end_to_end.ESCALATE_AFTER_S


def test_every_default_in_the_settings_table_is_the_services_default() -> None:
    documented = _settings_table()
    fields = Settings.model_fields
    for name, default in documented.items():
        field = fields[name.removeprefix("ESCALATION_").lower()]
        if default == "unset":
            assert field.default is None, name
        elif name != "ESCALATION_POLICIES_FILE" and name != "ESCALATION_LEVELS_FILE":
            [value] = re.findall(r"`([^`]+)`", default)[:1]
            assert str(field.default) == value or float(field.default) == float(value), name
    assert len(documented) >= 8


def test_the_reasons_the_guide_quotes_speak_the_shipped_policies_targets_as_the_service_does() -> None:
    policies = {p.name: p for p in load_policies(ROOT / "services" / "escalation" / "sla.yaml").policies}
    quoted = re.findall(r"target \(([^,]+), policy ([\w-]+)\)", PROSE)
    assert quoted
    for figure, name in quoted:
        targets = policies[name].targets
        spoken = {_spoken(t) for t in (targets.first_response, targets.next_update, targets.resolution) if t}
        assert figure in spoken, (figure, name)


def test_a_day_in_a_duration_is_24_hours_of_business_time_as_the_guide_says() -> None:
    assert "A `d` is 24 hours of it, not an office day" in PROSE
    assert parse_duration("1d") == timedelta(hours=24)


def test_the_timings_the_guide_gives_for_resends_rebuild_progress_and_pruning_are_the_codes() -> None:
    [resend] = re.findall(r"rows older than (\d+) s", PROSE)
    assert timedelta(seconds=int(resend)) == RESEND_AFTER
    [progress] = re.findall(r"a progress line is logged every (\d+) seconds", PROSE)
    assert float(progress) == LOG_EVERY_S
    [chunk] = re.findall(r"a chunk of ([\d,]+) per transaction", PROSE)
    assert int(chunk.replace(",", "")) == inspect.signature(DeadlineStore.prune_processed).parameters["chunk"].default
