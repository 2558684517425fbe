"""The headers the AsyncAPI document defines are the ones the suite's producers really put on a record.

Read back from the real broker: FastStream adds headers of its own (``correlation_id``), so only the
record as a consumer receives it says what an integrator will see.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord

from contracts import docs
from contracts.envelope import new_envelope
from contracts.incidents import IncidentReported
from contracts.tickets import TicketClaimed, TicketClaimedData
from contracts.topics import DEAD_LETTERS, INCIDENTS_REPORTED, TICKET_EVENTS_TOPIC, Topic
from runtime.consumer import Delivery
from runtime.kafka import Encoded, Publisher, headers_for, make_broker
from runtime.service import Service
from runtime.settings import CommonSettings, HttpSettings
from tests.support.kafka import incident, produce, read_all, wait_for

ASYNCAPI = json.loads(docs.ASYNCAPI_PATH.read_text())


def _headers_schema(topic: Topic) -> dict[str, Any]:
    return ASYNCAPI["components"]["messages"][f"{topic.name}:Message"]["headers"]


def _headers(record: ConsumerRecord) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def _assert_conforms(headers: dict[str, str], schema: dict[str, Any]) -> None:
    properties = schema["properties"]
    if schema.get("additionalProperties") is None:
        assert set(headers) <= set(properties), f"undocumented headers: {set(headers) - set(properties)}"
    missing = set(schema["required"]) - set(headers)
    assert not missing, f"documented as always set, missing: {missing}"
    for name, value in headers.items():
        documented = properties.get(name, {})
        if "const" in documented:
            assert value == documented["const"], name
        if "enum" in documented:
            assert value in documented["enum"], name


def _correlation_id(headers: dict[str, str], topic: Topic) -> str:
    location = ASYNCAPI["components"]["messages"][f"{topic.name}:Message"]["correlationId"]["location"]
    return headers[location.removeprefix("$message.header#/")]


async def test_what_a_producer_of_the_suite_puts_on_a_record_is_what_the_asyncapi_document_defines(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    broker = make_broker("headers-test", CommonSettings(kafka_bootstrap_servers=kafka_bootstrap))
    await broker.connect()
    publisher = Publisher(broker, "headers-test", topic_prefix)
    reported = incident("Printer on fire")
    claimed_data = TicketClaimedData(number="HD-1", version=2, agent_id="alice")
    claimed = new_envelope(TicketClaimed, claimed_data, causation=reported, ticket_id=uuid.uuid4())
    try:
        await publisher.publish(INCIDENTS_REPORTED, reported, reported.data.partition_key)
        # The ticket relay's path: the stored event, already serialised, with the headers it stored.
        stored = Encoded(claimed.model_dump_json().encode(), str(claimed.ticket_id), headers_for(claimed))
        await publisher.publish_encoded(TICKET_EVENTS_TOPIC, [stored])
    finally:
        await broker.stop()

    for topic, message in ((INCIDENTS_REPORTED, reported), (TICKET_EVENTS_TOPIC, claimed)):
        [record] = await read_all(kafka_bootstrap, topic_prefix + topic.name)
        headers = _headers(record)
        _assert_conforms(headers, _headers_schema(topic))
        assert headers["message-type"] == message.type and headers["schema-version"] == str(message.schema_version)
        assert _correlation_id(headers, topic) == message.correlation_id
        assert headers.get("causation-id") == message.causation_id
    assert "causation-id" in _headers_schema(TICKET_EVENTS_TOPIC)["properties"]


async def test_a_dead_letter_carries_the_headers_the_asyncapi_document_defines_for_it(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        kafka_max_attempts=2,
        kafka_retry_backoff_ms=10,
    )
    service = Service("headers-test", settings, HttpSettings(http_port=0), description="test")
    attempted: list[str] = []

    async def never_succeeds(batch: Sequence[Delivery[Any]]) -> None:
        attempted.extend(d.message.data.subject for d in batch)
        raise RuntimeError("cannot digest this")

    service.subscribe(INCIDENTS_REPORTED, never_succeeds, accepts=[IncidentReported], group="g-headers")
    poison = incident("poison")
    async with service._lifespan(service.app):
        reported_topic = topic_prefix + INCIDENTS_REPORTED.name
        await produce(kafka_bootstrap, reported_topic, b"\x00not a message", key=b"k")
        await produce(kafka_bootstrap, reported_topic, poison.model_dump_json().encode(), key=b"k")
        await wait_for(lambda: len(attempted) >= 2, what="the poison message retried")
        dead = await read_all(kafka_bootstrap, topic_prefix + DEAD_LETTERS.name, at_least=2)

    assert len(dead) == 2
    for record in dead:
        _assert_conforms(_headers(record), _headers_schema(DEAD_LETTERS))
    documented = set(_headers_schema(DEAD_LETTERS)["properties"])
    assert {name for record in dead for name in _headers(record) if name.startswith("dlt.")} <= documented
