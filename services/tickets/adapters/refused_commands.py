"""Commands a producer may not send, set aside on the dead-letter topic (``dlt.kind`` ``forbidden``).

Each producer writes commands on a topic of its own, and Kafka's ACLs let only
that producer write it; so the topic says who sent a command, and a command
type the producer may not send (notify asking for an escalation, say) is
refused, whoever wrote it. It is not applied, not retried (sending it again
cannot make it allowed) and not dropped: it goes to the dead-letter topic, the
envelope as it was decoded (same event id and content, not byte for byte what
the producer sent), with the same headers as any dead letter, for an operator
to look into: a forbidden command means a misconfigured or compromised producer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from contracts.envelope import Envelope
from contracts.topics import DEAD_LETTERS
from runtime.consumer import Delivery
from runtime.kafka import Publisher, headers_for
from runtime.logs import get_logger
from runtime.metrics import DEAD_LETTERS as DEAD_LETTER_COUNT

log = get_logger("tickets.refused_commands")
KIND = "forbidden"


class RefusedCommands:
    def __init__(self, publisher: Publisher, service: str, group: str) -> None:
        self._publisher = publisher
        self._service = service
        self._group = group  # the consumer group of the command topic, with the deployment's prefix

    async def set_aside(self, refused: Sequence[tuple[Delivery[Envelope[Any]], str]]) -> None:
        """Put every ``(delivery, why)`` on the dead-letter topic; returns once Kafka has them all."""
        await asyncio.gather(*(self._put(delivery, why) for delivery, why in refused))

    async def _put(self, delivery: Delivery[Envelope[Any]], why: str) -> None:
        message = delivery.message
        headers = headers_for(message) | {
            "dlt.reason": why[:2000],
            "dlt.kind": KIND,
            "dlt.origin.topic": delivery.topic,
            "dlt.origin.partition": str(delivery.partition),
            "dlt.origin.offset": str(delivery.offset),
            "dlt.consumer.group": self._group,
            "dlt.service": self._service,
            "dlt.attempts": "1",
            "dlt.failed_at": datetime.now(UTC).isoformat(),
        }
        value = message.model_dump_json().encode()
        await self._publisher.publish_raw(DEAD_LETTERS, value, delivery.key, headers)
        DEAD_LETTER_COUNT.labels(self._service, delivery.topic, self._group, KIND).inc()
        log.warning("command refused: its producer may not send it", reason=why, origin_topic=delivery.topic)
