"""From the reported topic to the identified topic.

Every reported incident, whether it came through ``POST /v1/incidents`` or an
integration published it straight onto the topic, passes through here. The
handler is idempotent: a redelivered report republishes the identified
incident with the same event id (derived from the report's), and the ticket
service opens one ticket from it. When INTAKE_FLOOD_TOPIC_MAX_PER_SENDER is
set, reports published straight onto the topic pass the flood guard here
(``flood.py``); a flooded one is set aside on the dead-letter topic, not
identified.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from contracts.incidents import (
    Channel,
    DirectoryCustomerRemoved,
    DirectoryCustomerUpdated,
    IncidentReported,
)
from contracts.tickets import TicketOpened, TicketResolved
from contracts.topics import INCIDENTS_IDENTIFIED
from runtime.consumer import Delivery, PoisonMessage
from runtime.kafka import Outgoing, Publisher
from runtime.logs import get_logger
from services.intake.adapters.directory_store import DirectoryStore
from services.intake.adapters.flooded_incidents import FloodedIncidents
from services.intake.adapters.ticket_threads import (
    TicketThreads,
    channel_thread,
    mail_thread,
    sender_thread,
)
from services.intake.customer_entry import CustomerEntry
from services.intake.domain import (
    Customer,
    DuplicateCustomer,
    identified_incident,
    identify,
    normalise_handle,
)
from services.intake.flood import TopicFloodGuard, sender_of, straight_onto_topic
from services.intake.reporting import FLOODED

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


@dataclass(frozen=True)
class FloodControl:
    """The topic path's flood guard, and where it sets the incidents it stops aside."""

    guard: TopicFloodGuard
    aside: FloodedIncidents


class IdentifyIncidents:
    """Identify the customer of every reported incident of a batch; publish them all, then return."""

    def __init__(
        self, directory: DirectoryStore, region: str, publisher: Publisher, floods: FloodControl | None = None
    ) -> None:
        self._directory = directory
        self._region = region
        self._publisher = publisher
        self._floods = floods

    async def __call__(self, deliveries: Sequence[Delivery[IncidentReported]]) -> None:
        now = datetime.now(UTC)
        admitted, flooded = self._guard(deliveries)
        # One query for the batch: every customer any of its verified contacts could be.
        contacts = (d.message.data.contact for d in admitted if d.message.data.contact_verified)
        directory = await self._directory.directory_for(contacts)
        outgoing = []
        for delivery in admitted:
            reported = delivery.message
            data = reported.data
            profile = identify(
                directory, data.contact, self._region, verified=data.contact_verified, language=data.language
            )
            identified = identified_incident(reported, profile, now)
            outgoing.append(Outgoing(INCIDENTS_IDENTIFIED, identified, reported.data.partition_key))
        if flooded and self._floods:
            await asyncio.gather(self._publisher.publish_all(outgoing), self._floods.aside.set_aside(flooded))
        else:
            await self._publisher.publish_all(outgoing)
        for item in outgoing:
            self._record(item)
        for delivery, why in flooded:
            FLOODED.labels(delivery.message.data.channel.value, "topic").inc()
            log.warning("incident set aside by the flood guard", reason=why, event_id=str(delivery.message.event_id))

    def _guard(
        self, deliveries: Sequence[Delivery[IncidentReported]]
    ) -> tuple[list[Delivery[IncidentReported]], list[tuple[Delivery[IncidentReported], str]]]:
        """The batch split into what goes on and what the flood guard stops, in order."""
        if self._floods is None:
            return list(deliveries), []
        guard = self._floods.guard
        admitted, flooded = [], []
        for delivery in deliveries:
            reported = delivery.message
            sender = sender_of(reported.data.channel.value, reported.data.contact)
            if not straight_onto_topic(reported) or guard.admit(reported.event_id, sender):
                admitted.append(delivery)
            else:
                flooded.append((delivery, f"flooded: sender {sender} is over the flood limit ({guard.limit})"))
        return admitted, flooded

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


class KeepDirectory:
    """Apply the directory topic's customers to intake's directory, in topic order, one transaction per batch.

    Replaying the topic (it is compacted: the latest entry per customer stays)
    leaves the directory as it is. An entry that can never be stored (a phone
    number that is none, a key another customer holds) is dead-lettered.
    """

    def __init__(self, directory: DirectoryStore, region: str) -> None:
        self._directory = directory
        self._region = region

    async def __call__(
        self, deliveries: Sequence[Delivery[DirectoryCustomerUpdated | DirectoryCustomerRemoved]]
    ) -> None:
        changes: list[Customer | str] = [self._change(d.message) for d in deliveries]
        try:
            await self._directory.apply(changes, source="topic")
        except DuplicateCustomer as exc:
            raise PoisonMessage(str(exc)) from None
        log.info("directory updated from the topic", changes=len(changes))

    def _change(self, message: DirectoryCustomerUpdated | DirectoryCustomerRemoved) -> Customer | str:
        if isinstance(message, DirectoryCustomerRemoved):
            return message.data.user_id
        try:
            return CustomerEntry.model_validate(message.data.model_dump()).customer(self._region)
        except ValueError as exc:  # pydantic's ValidationError is one too
            raise PoisonMessage(f"customer {message.data.user_id!r}: {exc}") from None


class LearnTicketThreads:
    """Remember which ticket each opening contact, each social sender and each resolution mail belongs to
    (idempotent)."""

    def __init__(self, threads: TicketThreads) -> None:
        self._threads = threads

    async def __call__(self, deliveries: Sequence[Delivery[Any]]) -> None:
        pairs: list[tuple[str, str]] = []
        senders: list[tuple[str, str, datetime]] = []
        for delivery in deliveries:
            event = delivery.message
            if isinstance(event, TicketOpened):
                data = event.data
                pairs.append((channel_thread(data.channel.value, data.channel_message_id), data.number))
                if data.channel is Channel.SOCIAL and (handle := normalise_handle(data.customer.social_handle)):
                    senders.append((sender_thread(data.channel.value, handle), data.number, event.occurred_at))
            elif isinstance(event, TicketResolved):
                pairs.append((mail_thread(f"<resolved.{event.event_id}@helpdesk>"), event.data.number))
        await self._threads.remember(pairs)
        await self._threads.remember_senders(senders)
