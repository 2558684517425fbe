"""Escalation's own Prometheus metrics (the shared Kafka ones come from the runtime)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OPEN_TIMERS = Gauge("helpdesk_escalation_open_timers", "Deadlines pending: unclaimed tickets whose clock is running.")
ESCALATIONS_FIRED = Counter(
    "helpdesk_escalation_fired_total", "Escalations sent, by the level the ticket moved to.", ["level"]
)
FIRE_LAG = Histogram(
    "helpdesk_escalation_fire_lag_seconds",
    "How late an escalation was sent after its deadline passed.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
WARNINGS_SENT = Counter(
    "helpdesk_escalation_warnings_total",
    "SLA warnings sent, by the level the ticket sits at and the percentage of the target used.",
    ["level", "percent"],
)
_SLA_BUCKETS = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 3 * 24 * 3600, 10 * 24 * 3600)
TIME_TO_FIRST_RESPONSE = Histogram(
    "helpdesk_sla_time_to_first_response_seconds",
    "Opening to first claim or assignment, less the time spent waiting on the customer or a third party.",
    ["priority", "queue"],
    buckets=_SLA_BUCKETS,
)
TIME_TO_RESOLUTION = Histogram(
    "helpdesk_sla_time_to_resolution_seconds",
    "Opening to resolution, less the time spent waiting on the customer or a third party.",
    ["priority", "queue"],
    buckets=_SLA_BUCKETS,
)
BREACHES = Counter(
    "helpdesk_sla_breaches_total",
    "SLA targets breached, by priority, queue and target (first_response, next_update, resolution).",
    ["priority", "queue", "target"],
)
PROCESSED_EVENTS_PRUNED = Counter(
    "helpdesk_escalation_processed_events_pruned_total",
    "Ids of applied ticket events forgotten once older than ESCALATION_PROCESSED_EVENTS_RETENTION_S.",
)
