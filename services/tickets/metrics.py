"""The ticket service's own Prometheus metrics (the shared Kafka ones come from runtime.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TICKETS_OPENED = Counter(
    "helpdesk_tickets_opened_total",
    "Tickets opened from identified incidents, by channel.",
    ["channel"],
)
COMMANDS = Counter(
    "helpdesk_ticket_commands_total",
    "Commands to tickets (from topics and the HTTP API) by type and outcome: "
    "applied (events recorded), unchanged (nothing to record), rejected (a rule forbade it), duplicate (seen before).",
    ["type", "outcome"],
)
RELAY_LAG = Gauge(
    "helpdesk_ticket_relay_lag_events",
    "Events stored in the ticket log but not yet published to the ticket events topic.",
)
RELAY_PUBLISHED = Counter(
    "helpdesk_ticket_relay_published_total",
    "Ticket events the relay published and Kafka acknowledged.",
)
