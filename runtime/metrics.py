"""Prometheus metrics every service exports, and the /metrics endpoint.

Services add their own metrics next to their code; these are the ones the
shared Kafka plumbing records, so one dashboard reads every service alike.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

MESSAGES_CONSUMED = Counter(
    "helpdesk_messages_consumed_total",
    "Messages taken off a topic, by outcome (processed, deadlettered).",
    ["service", "topic", "group", "outcome"],
)
HANDLER_RETRIES = Counter(
    "helpdesk_handler_retries_total",
    "Handler attempts that failed and were retried.",
    ["service", "topic", "group"],
)
DEAD_LETTERS = Counter(
    "helpdesk_dead_letters_total",
    "Messages sent to the dead-letter topic, by kind of reason (invalid, failed, flooded).",
    ["service", "topic", "group", "kind"],
)
BATCH_SECONDS = Histogram(
    "helpdesk_handler_batch_seconds",
    "Time to process one batch taken off a topic, until its effect is durable.",
    ["service", "topic", "group"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MESSAGES_PUBLISHED = Counter(
    "helpdesk_messages_published_total",
    "Messages published and acknowledged by every in-sync replica.",
    ["service", "topic"],
)
KAFKA_OUTAGES = Counter(
    "helpdesk_kafka_outages_total",
    "Times Kafka became unreachable from the service (each logged once, with its duration when it ends).",
    ["service"],
)
KAFKA_REACHABLE = Gauge(
    "helpdesk_kafka_reachable",
    "1 while the service reaches Kafka, 0 during an outage.",
    ["service"],
)
KAFKA_CONNECTION_ERRORS = Counter(
    "helpdesk_kafka_connection_errors_total",
    "The Kafka client's failed connection attempts, fetches and metadata refreshes (logged at debug).",
    ["service"],
)

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
