"""Setting aside, on the dead-letter topic, incidents the flood guard stopped but nobody can be told to resend.

Two kinds: an incident an integration published straight onto the reported
topic (it was acknowledged to the integration by Kafka), and a contact in a
Meta webhook delivery (Meta does not resend a delivery answered 200, and an
error would make it resend every contact of it). Refusing either loses a
customer's contact; dropping it too. So it goes to the dead-letter topic
whole, as the ``incident.reported`` envelope (same event id, same key), with
the same headers as any dead letter (``dlt.kind`` ``flooded``, the reason
naming the sender, ``dlt.origin.*``): an operator reads it and replays it to
``dlt.origin.topic`` (the reported topic) once the burst is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from contracts.incidents import IncidentReported
from contracts.topics import DEAD_LETTERS, INCIDENTS_REPORTED
from runtime.consumer import Delivery
from runtime.kafka import Publisher, headers_for
from runtime.metrics import DEAD_LETTERS as DEAD_LETTER_COUNT


class FloodedIncidents:
    def __init__(self, publisher: Publisher, service: str, group: str) -> None:
        self._publisher = publisher
        self._service = service
        self._group = group  # the consumer group of the topic path

    async def set_aside(self, flooded: Sequence[tuple[Delivery[IncidentReported], str]]) -> None:
        """Put every ``(delivery, why)`` of the topic path on the dead-letter topic; returns once all are acknowledged."""
        await asyncio.gather(*(self._delivered(delivery, why) for delivery, why in flooded))

    async def set_aside_contact(self, message: IncidentReported, why: str, endpoint: str) -> None:
        """Put a contact a channel adapter received (``endpoint``) on the dead-letter topic; returns once acknowledged.

        It never was on a topic: ``dlt.origin.topic`` names the reported topic
        it belongs on, and there is no partition, offset or consumer group.
        """
        origin = {
            "dlt.origin.topic": self._publisher.topic_name(INCIDENTS_REPORTED),
            "dlt.origin.path": "http",
            "dlt.origin.channel": message.data.channel.value,
            "dlt.origin.endpoint": endpoint,
        }
        await self._put(message, why, origin, message.data.partition_key.encode(), "http")

    async def _delivered(self, delivery: Delivery[IncidentReported], why: str) -> None:
        message = delivery.message
        origin = {
            "dlt.origin.topic": delivery.topic,
            "dlt.origin.path": "topic",
            "dlt.origin.partition": str(delivery.partition),
            "dlt.origin.offset": str(delivery.offset),
            "dlt.consumer.group": self._group,
        }
        key = delivery.key if delivery.key is not None else message.data.partition_key.encode()
        await self._put(message, why, origin, key, self._group)

    async def _put(self, message: IncidentReported, why: str, origin: dict[str, str], key: bytes, group: str) -> None:
        headers = (
            headers_for(message)
            | {"dlt.reason": why[:2000], "dlt.kind": "flooded"}
            | origin
            | {"dlt.service": self._service, "dlt.attempts": "1", "dlt.failed_at": datetime.now(UTC).isoformat()}
        )
        await self._publisher.publish_raw(DEAD_LETTERS, message.model_dump_json().encode(), key, headers)
        DEAD_LETTER_COUNT.labels(self._service, origin["dlt.origin.topic"], group, "flooded").inc()
