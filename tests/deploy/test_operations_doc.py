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


def test_the_security_section_names_every_credential_a_deployment_must_set_and_what_each_may_do() -> None:
    section = DOC.split("## Security: what is on by default, what you must set", 1)[1].split("\n## ", 1)[0]
    must_set = section.split("**A deployment must set**", 1)[1].split("**What each credential may do:**", 1)
    # What makes a service refuse to start when missing, and the switch that must never be set in a deployment.
    for variable in ("AUTH_JWKS_URL", "INTAKE_API_KEYS", "TICKETS_API_KEYS", "KAFKA_SASL_PASSWORD",
                     "INTAKE_MAIL_TRUSTED_AUTHSERV_IDS", "INTAKE_TWILIO_AUTH_TOKEN", "INTAKE_META_APP_SECRET"):
        assert f"`{variable}`" in must_set[0], f"{variable} is not among what a deployment must set"
    assert "HELPDESK_DEVELOPMENT=true" in section and "never" in section
    for credential in ("agent token", "lead token", "customer token", "tickets API key", "scope `report`",
                       "`read-directory`", "Kafka principal"):
        assert credential in must_set[1], f"what a {credential} may do is not said"
