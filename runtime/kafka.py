"""The FastStream Kafka broker with the suite's safe defaults, and publishing.

FastStream's own defaults would lose messages for us: its producer sends with
``acks=1`` and no idempotence. Every service builds its broker here instead:
``acks=all`` with an idempotent producer, so a message we call published is on
every in-sync replica, and a producer retry never writes it twice.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from contracts.envelope import Envelope
from contracts.topics import Topic
from runtime.metrics import MESSAGES_PUBLISHED
from runtime.settings import CommonSettings


def make_broker(service: str, settings: CommonSettings, *, description: str = "") -> KafkaBroker:
    """A broker whose producer is idempotent with ``acks=all``."""
    return KafkaBroker(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        client_id=f"helpdesk-{service}{settings.kafka_client_id_suffix}",
        acks="all",
        enable_idempotence=True,
        linger_ms=2,  # a little batching, bought with at most 2 ms of latency
        max_batch_size=256 * 1024,
        compression_type=None,
        allow_auto_create_topics=False,  # topics come from the registry, with their partition counts
        graceful_timeout=30.0,
        logger=logging.getLogger("faststream"),  # through our JSON handler, not its own
        log_level=logging.DEBUG,  # per-message lines; our handlers log what matters
        description=description or f"helpdesk {service} service",
        # No FastStream Prometheus middleware: runtime.metrics counts what we consume, retry,
        # dead-letter and publish, per batch, at a fraction of the per-message cost.
        security=broker_security(settings),
    )


_SASL = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}


def broker_security(settings: CommonSettings) -> BaseSecurity | None:
    """TLS and SASL towards Kafka as the KAFKA_SECURITY_* settings say (None: PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = _ssl_context(settings) if protocol.endswith("SSL") else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context)
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    sasl = _SASL[settings.kafka_sasl_mechanism]
    return sasl(settings.kafka_sasl_username or "", password, ssl_context=context, use_ssl=context is not None)


def client_security_options(settings: CommonSettings) -> dict[str, Any]:
    """The same security as keyword arguments of aiokafka's own clients (the topics admin)."""
    return parse_security(broker_security(settings))


def _ssl_context(settings: CommonSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None)
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def headers_for(message: Envelope[Any]) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "message-type": message.type,
        "schema-version": str(message.schema_version),
        "correlation-id": message.correlation_id,
    }
    if message.causation_id:
        headers["causation-id"] = message.causation_id
    return headers


@dataclass(frozen=True)
class Outgoing:
    topic: Topic
    message: Envelope[Any]
    key: str


@dataclass(frozen=True)
class Encoded:
    """A contract message already serialised, with the headers :func:`headers_for` gives."""

    value: bytes
    key: str
    headers: dict[str, str]


class Publisher:
    """Publishes contract messages and returns only once Kafka has acknowledged them."""

    def __init__(self, broker: KafkaBroker, service: str, prefix: str = "") -> None:
        self._broker = broker
        self._service = service
        self._prefix = prefix

    def topic_name(self, topic: Topic) -> str:
        return topic.qualified(self._prefix)

    async def publish(self, topic: Topic, message: Envelope[Any], key: str) -> None:
        await self.publish_all([Outgoing(topic, message, key)])

    async def publish_all(self, items: Sequence[Outgoing]) -> None:
        """Send every item pipelined, then wait for every acknowledgement.

        Order per key is kept: the idempotent producer keeps per-partition
        order even when it retries.
        """
        futures = []
        for item in items:
            fut = await self._broker.publish(
                item.message.model_dump_json().encode(),
                topic=self.topic_name(item.topic),
                key=item.key.encode(),
                headers=headers_for(item.message),
                correlation_id=item.message.correlation_id,
                no_confirm=True,
            )
            futures.append(fut)
        if futures:
            await asyncio.gather(*futures)
        for item in items:
            MESSAGES_PUBLISHED.labels(self._service, item.topic.name).inc()

    async def publish_encoded(self, topic: Topic, items: Sequence[Encoded]) -> None:
        """Like :meth:`publish_all` for messages already serialised (the ticket relay's stored events)."""
        futures = [
            await self._broker.publish(
                item.value,
                topic=self.topic_name(topic),
                key=item.key.encode(),
                headers=item.headers,
                correlation_id=item.headers.get("correlation-id"),
                no_confirm=True,
            )
            for item in items
        ]
        if futures:
            await asyncio.gather(*futures)
        MESSAGES_PUBLISHED.labels(self._service, topic.name).inc(len(items))

    async def publish_raw(
        self, topic: Topic, value: bytes, key: bytes | None, headers: dict[str, str]
    ) -> None:
        await self._broker.publish(value, topic=self.topic_name(topic), key=key, headers=headers)
        MESSAGES_PUBLISHED.labels(self._service, topic.name).inc()


def split_servers(servers: str) -> Iterable[str]:
    return [s.strip() for s in servers.split(",") if s.strip()]
