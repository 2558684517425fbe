"""docs/operations.md: its generated tables are current and it covers what operators need."""

from __future__ import annotations

import re

from tests.deploy.repo import REPO, SERVICES, operations_tables, service_env_vars

DOC = (REPO / "docs" / "operations.md").read_text()


def test_the_generated_tables_are_current() -> None:
    tables = operations_tables()
    assert tables.regenerate(DOC) == DOC, "docs/operations.md is stale: run python deploy/operations_tables.py"


def test_every_variable_of_every_service_is_in_the_guide_with_its_default() -> None:
    for service in SERVICES:
        for variable, default in service_env_vars(service).items():
            row = re.search(rf"^\| `{variable}` \| (.*?) \|", DOC, re.MULTILINE)
            assert row, f"{variable} is not documented"
            if isinstance(default, (int, float, str)) and not isinstance(default, bool) and default != "":
                assert str(default) in row.group(1), f"{variable}: default {default!r} not shown"


def test_the_guide_covers_install_configure_scale_upgrade_backup_rebuild_dashboard_and_alerts() -> None:
    headings = set(re.findall(r"^## (.+)$", DOC, re.MULTILINE))
    for heading in ("Install on Kubernetes", "Configure", "Scale", "Upgrade with zero lost tickets", "Back up and restore",
                    "Rebuild read models from the log", "The dashboard", "Alerts", "Kafka in production"):
        assert heading in headings, heading
    assert "python -m services.tickets.rebuild_read_model" in DOC
