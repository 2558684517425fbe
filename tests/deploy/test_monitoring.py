"""The dashboard and the alerts read metrics the code really exports, in valid PromQL."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from functools import cache

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY

from tests.deploy.repo import DEPLOY, REPO, SERVICES

DASHBOARD = DEPLOY / "base" / "monitoring" / "helpdesk-dashboard.json"
ALERTS = DEPLOY / "compose" / "prometheus" / "alerts.yml"
# Series that come from elsewhere: Prometheus itself, and the Kafka exporter
# (kafka-exporter in compose, Strimzi's Kafka Exporter on Kubernetes).
EXTERNAL = {"up", "kafka_consumergroup_lag", "kafka_consumergroup_current_offset"}


@cache
def exported_series() -> frozenset[str]:
    """Every series name the five services export: their own metrics, the runtime's and FastStream's."""
    from runtime.kafka import make_broker
    from runtime.settings import CommonSettings

    for service in SERVICES:
        importlib.import_module(f"services.{service}.bootstrap")  # imports its handlers and metrics
    make_broker("metrics-probe", CommonSettings())  # registers FastStream's middleware metrics
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}
    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return frozenset(names)


def metric_names(expr: str) -> Iterator[str]:
    """The metric name of every selector in a PromQL expression."""
    stack = [promql_parser.parse(expr.replace("$__rate_interval", "5m"))]
    while stack:
        node = stack.pop()
        if isinstance(node, promql_parser.VectorSelector):
            yield node.name
            continue
        for attr in ("expr", "lhs", "rhs", "param", "vector_selector"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, (str, int, float)):
                stack.append(child)
        stack.extend(getattr(node, "args", None) or [])


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_the_metric_name_extraction_sees_every_selector() -> None:
    expr = 'sum by (le) (rate(a_bucket{x="1"}[5m])) / on() group_left clamp_min(b_total, 1) > bool scalar(c)'
    assert set(metric_names(expr)) == {"a_bucket", "b_total", "c"}


def test_the_code_exports_the_series_operators_watch() -> None:
    series = exported_series()
    for name in ("helpdesk_dead_letters_total", "helpdesk_handler_batch_seconds_bucket", "helpdesk_tickets_opened_total",
                 "helpdesk_escalation_fired_total", "helpdesk_notify_sent_total"):
        assert name in series
    assert "helpdesk_no_such_metric_total" not in series


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_query_parses_and_reads_only_metrics_that_exist(source: str) -> None:
    queries = dashboard_queries() if source == "dashboard" else [(r["alert"], r["expr"]) for r in alert_rules()]
    assert queries
    unknown = []
    for where, expr in queries:
        names = set(metric_names(expr))
        assert names, f"{where}: no metric in {expr!r}"
        unknown += [f"{where}: {n}" for n in names - exported_series() - EXTERNAL]
    assert not unknown, "metrics the code does not export:\n" + "\n".join(unknown)


def test_the_dashboard_covers_what_operations_watch() -> None:
    board = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    text = " ".join(f"{title} {expr}" for title, expr in dashboard_queries())
    for needle in ("helpdesk_tickets_opened_total", "by (channel)", "helpdesk_routing_decisions_total", "by (priority)",
                   "by (queue)", "helpdesk_escalation_fired_total", "helpdesk_escalation_open_timers",
                   "helpdesk_notify_sent_total", "helpdesk_notify_failed_total", "kafka_consumergroup_lag",
                   "helpdesk_dead_letters_total", "helpdesk_handler_batch_seconds_bucket"):
        assert needle in text, needle
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"


def test_every_alert_has_a_severity_a_summary_and_a_runbook_in_the_operations_guide() -> None:
    doc = (REPO / "docs" / "operations.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", doc, re.MULTILINE)}
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor == rule["alert"].lower() and anchor in anchors, f"{rule['alert']}: no '### {rule['alert']}' runbook"
