"""Putting a channel's contact on the reported topic, acknowledged before the channel is answered.

Every channel adapter (SMTP, SMS, ...) ends here: the contact becomes an
``incident.reported`` whose event id follows from channel and channel message
id (a contact delivered twice is one incident), and the adapter answers its
peer only after Kafka has acknowledged it: from then on it cannot be lost.
A flooded contact is refused (the peer keeps it), or, where the channel cannot
be refused (Meta's webhook), set aside whole on the dead-letter topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import cast

from prometheus_client import Counter

from contracts.envelope import new_envelope
from contracts.incidents import IncidentReported, IncidentReportedData
from contracts.topics import INCIDENTS_REPORTED
from runtime.kafka import Publisher
from runtime.logs import get_logger
from services.intake.adapters.flooded_incidents import FloodedIncidents
from services.intake.domain import reported_event_id
from services.intake.flood import FloodGuard, sender_of

CONTACTS = Counter(
    "helpdesk_intake_contacts_total",
    "Contacts received by a channel adapter, by channel and outcome "
    "(accepted, malformed, too_large, bad_signature, flooded, unavailable).",
    ["channel", "outcome"],
)
FLOODED = Counter(
    "helpdesk_intake_flooded_total",
    "Contacts refused or set aside by the flood guard, by channel and path (http, smtp, websocket, topic).",
    ["channel", "path"],
)
# The way in of a channel adapter's contacts (every other adapter is an HTTP webhook or endpoint).
ADAPTER_PATHS = {"email": "smtp", "chat": "websocket"}
log = get_logger("intake.reporting")


class Flooded(Exception):
    """The sender is over the flood guard's limit: the contact is refused, not published."""

    def __init__(self, sender: str, limit: str) -> None:
        super().__init__(f"flooded: sender {sender} is over the flood limit ({limit})")
        self.sender = sender


class NotAcknowledged(Exception):
    """Kafka did not acknowledge the incident in time: the contact is not accepted."""


def reported_message(data: IncidentReportedData, correlation_id: str | None = None) -> IncidentReported:
    event_id = reported_event_id(data.channel.value, data.channel_message_id)
    return cast(
        IncidentReported, new_envelope(IncidentReported, data, event_id=event_id, correlation_id=correlation_id)
    )


class Reporter:
    """Publishes a channel's incidents and waits for the acknowledgement."""

    def __init__(self, publisher: Publisher, timeout_s: float, guard: FloodGuard, aside: FloodedIncidents) -> None:
        self._publisher = publisher
        self._timeout_s = timeout_s
        self.guard = guard
        self._aside = aside

    async def report(
        self, data: IncidentReportedData, correlation_id: str | None = None, *, peer: str | None = None
    ) -> IncidentReported:
        """Publish ``data`` and wait for Kafka's acknowledgement; :class:`Flooded`, :class:`NotAcknowledged`.

        ``peer`` is the address the contact came from (the flood guard counts an unverified contact by it).
        """
        channel = data.channel.value
        self.admit(channel, data, peer)
        reported = reported_message(data, correlation_id)
        await self._acknowledged(channel, self._publisher.publish(INCIDENTS_REPORTED, reported, data.partition_key))
        CONTACTS.labels(channel, "accepted").inc()
        log.info(
            "contact accepted",
            correlation_id=reported.correlation_id,
            channel=channel,
            channel_message_id=data.channel_message_id,
            reply_to_number=data.reply_to_number,
        )
        return reported

    async def report_or_set_aside(self, data: IncidentReportedData, endpoint: str) -> None:
        """Publish ``data``; when flooded, put it whole on the dead-letter topic instead (for a channel that
        cannot be refused). Raises only :class:`NotAcknowledged`: once this returns, the contact cannot be lost."""
        try:
            await self.report(data)
        except Flooded as flooded:
            channel = data.channel.value
            setting_aside = self._aside.set_aside_contact(reported_message(data), str(flooded), endpoint)
            await self._acknowledged(channel, setting_aside)
            log.warning(
                "contact set aside on the dead-letter topic by the flood guard",
                channel=channel,
                channel_message_id=data.channel_message_id,
                reason=str(flooded),
            )

    async def _acknowledged(self, channel: str, publishing: Awaitable[None]) -> None:
        try:
            await asyncio.wait_for(publishing, self._timeout_s)
        except Exception as exc:
            CONTACTS.labels(channel, "unavailable").inc()
            log.error("contact not acknowledged by Kafka", channel=channel, error=f"{type(exc).__name__}: {exc}")
            raise NotAcknowledged(str(exc)) from exc

    def admit(self, channel: str, data: IncidentReportedData, peer: str | None = None) -> None:
        """Count the contact against its sender's limit; :class:`Flooded` when over it."""
        sender = sender_of(channel, data.contact, verified=data.contact_verified, peer=peer)
        if sender is None or self.guard.admit(sender):
            return  # nobody to count it against (flood.py says why), or within the limit
        CONTACTS.labels(channel, "flooded").inc()
        FLOODED.labels(channel, ADAPTER_PATHS.get(channel, "http")).inc()
        log.warning("contact stopped by the flood guard", channel=channel, sender=sender)
        raise Flooded(sender, self.guard.limit)
