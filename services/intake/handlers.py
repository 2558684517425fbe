"""From the reported topic to the identified topic.

Every reported incident, whether it came through ``POST /v1/incidents`` or an
integration published it straight onto the topic, passes through here. The
handler is idempotent: a redelivered report republishes the identified
incident with the same event id (derived from the report's), and the ticket
service opens one ticket from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import Counter

from contracts.incidents import IncidentReported
from contracts.topics import INCIDENTS_IDENTIFIED
from runtime.consumer import Delivery
from runtime.kafka import Outgoing, Publisher
from runtime.logs import get_logger
from services.intake.domain import Directory, identified_incident, identify

INCIDENTS_RECEIVED = Counter(
    "helpdesk_intake_incidents_received_total",
    "Reported incidents taken off the reported topic and identified, by channel (redeliveries count again).",
    ["channel"],
)
CUSTOMERS_IDENTIFIED = Counter(
    "helpdesk_intake_incidents_identified_total",
    "Identified incidents published, by outcome (identified, unidentified) and what matched.",
    ["outcome", "identified_by"],
)

log = get_logger("intake.handlers")


class IdentifyIncidents:
    """Identify the customer of every reported incident of a batch; publish them all, then return."""

    def __init__(self, directory: Directory, region: str, publisher: Publisher) -> None:
        self._directory = directory
        self._region = region
        self._publisher = publisher

    async def __call__(self, deliveries: Sequence[Delivery[IncidentReported]]) -> None:
        now = datetime.now(UTC)
        outgoing = []
        for delivery in deliveries:
            reported = delivery.message
            profile = identify(self._directory, reported.data.contact, self._region)
            identified = identified_incident(reported, profile, now)
            outgoing.append(Outgoing(INCIDENTS_IDENTIFIED, identified, reported.data.partition_key))
        await self._publisher.publish_all(outgoing)
        for item in outgoing:
            self._record(item)

    def _record(self, item: Outgoing) -> None:
        data = item.message.data
        customer = data.customer
        INCIDENTS_RECEIVED.labels(data.channel.value).inc()
        CUSTOMERS_IDENTIFIED.labels(
            "identified" if customer.identified else "unidentified", customer.identified_by or "none"
        ).inc()
        log.info(
            "incident identified",
            correlation_id=item.message.correlation_id,
            channel=data.channel.value,
            channel_message_id=data.channel_message_id,
            identified=customer.identified,
            identified_by=customer.identified_by,
            customer_id=customer.customer_id,
        )
