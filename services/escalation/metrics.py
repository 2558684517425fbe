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
