"""Notify's own Prometheus metrics (the shared Kafka ones come from the runtime)."""

from __future__ import annotations

from prometheus_client import Counter

SENT = Counter("helpdesk_notify_sent_total", "Notifications handed to their channel.", ["method", "template"])
SKIPPED = Counter(
    "helpdesk_notify_skipped_total",
    "Notifications not sent, by reason (already_sent, no_customer_email).",
    ["reason"],
)
FAILED = Counter(
    "helpdesk_notify_failed_total",
    "Notification attempts that failed, by reason (smtp, provider, rejected, template, not_supported, unusable, "
    "unsafe_header).",
    ["method", "reason"],
)
HELD_BACK = Counter(
    "helpdesk_notify_held_back_total",
    "Notifications over a rate limit: recorded as held back, not sent (limit: recipient or overall).",
    ["method", "limit"],
)

# Zeros from the start, so a dashboard and an alert see the series before the first event.
for _reason in ("already_sent", "no_customer_email"):
    SKIPPED.labels(_reason)
for _method in ("email", "sms", "phone", "pager", "alarm", "webhook"):
    for _limit in ("recipient", "overall"):
        HELD_BACK.labels(_method, _limit)
