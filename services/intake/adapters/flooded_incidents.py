"""Setting aside, on the dead-letter topic, the incidents the flood guard stopped on the topic path.

An incident an integration published straight onto the reported topic was
acknowledged to it: it cannot be refused, and dropping it would lose a
customer's contact. It goes to the dead-letter topic whole, with the same
headers as any dead letter (``dlt.kind`` ``flooded``, the reason naming the
sender, ``dlt.origin.*``), so an operator can read it and replay it to the
reported topic once the burst is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from contracts.incidents import IncidentReported
from contracts.topics import DEAD_LETTERS
from runtime.consumer import Delivery
from runtime.kafka import Publisher, headers_for
from runtime.metrics import DEAD_LETTERS as DEAD_LETTER_COUNT


class FloodedIncidents:
    def __init__(self, publisher: Publisher, service: str, group: str) -> None:
        self._publisher = publisher
        self._service = service
        self._group = group

    async def set_aside(self, flooded: Sequence[tuple[Delivery[IncidentReported], str]]) -> None:
        """Put every ``(delivery, why)`` on the dead-letter topic; returns once all are acknowledged."""
        await asyncio.gather(*(self._one(delivery, why) for delivery, why in flooded))

    async def _one(self, delivery: Delivery[IncidentReported], why: str) -> None:
        message = delivery.message
        headers = headers_for(message) | {
            "dlt.reason": why[:2000],
            "dlt.kind": "flooded",
            "dlt.origin.topic": delivery.topic,
            "dlt.origin.partition": str(delivery.partition),
            "dlt.origin.offset": str(delivery.offset),
            "dlt.consumer.group": self._group,
            "dlt.service": self._service,
            "dlt.attempts": "1",
            "dlt.failed_at": datetime.now(UTC).isoformat(),
        }
        key = delivery.key if delivery.key is not None else message.data.partition_key.encode()
        await self._publisher.publish_raw(DEAD_LETTERS, message.model_dump_json().encode(), key, headers)
        DEAD_LETTER_COUNT.labels(self._service, delivery.topic, self._group, "flooded").inc()
