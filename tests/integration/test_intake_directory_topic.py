"""The directory topic: customers a CMDB publishes identify the next incidents; removals and bad entries too."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from contracts.envelope import new_envelope
from contracts.incidents import (
    DirectoryCustomerRemoved,
    DirectoryCustomerRemovedData,
    DirectoryCustomerUpdated,
    DirectoryCustomerUpdatedData,
    IncidentIdentified,
)
from contracts.topics import DEAD_LETTERS, INCIDENTS_IDENTIFIED, INCIDENTS_REPORTED
from runtime.settings import CommonSettings
from runtime.topics_admin import ensure_topics
from services.intake.bootstrap import build
from services.intake.config import Settings
from tests.support.kafka import incident, produce, read_all, wait_for

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "helpdesk.directory.customers.v1"


class Harness:
    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix

    async def publish_customer(self, message: DirectoryCustomerUpdated | DirectoryCustomerRemoved) -> None:
        key = message.data.user_id.encode()
        await produce(self.bootstrap, self.prefix + TOPIC, message.model_dump_json().encode(), key=key)

    async def identify(self, **contact: str) -> IncidentIdentified:
        reported = incident("Something is wrong", **contact)
        await produce(self.bootstrap, self.prefix + INCIDENTS_REPORTED.name, reported.model_dump_json().encode())

        async def ours() -> list[ConsumerRecord]:
            records = await read_all(self.bootstrap, self.prefix + INCIDENTS_IDENTIFIED.name, timeout=5)
            mid = reported.data.channel_message_id
            return [r for r in records if json.loads(r.value)["data"]["channel_message_id"] == mid]

        [record] = await wait_for(ours, timeout=30)
        return IncidentIdentified.model_validate_json(record.value)


@pytest.fixture(scope="module")
async def harness(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix, partitions=3)
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=prefix, kafka_retry_backoff_ms=10
    )
    settings = Settings(
        directory_file=ROOT / "services/intake/directory.example.yaml",
        database_url=f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('intake') / 'intake.db'}",
        directory_topic=TOPIC,
        smtp_enabled=False,
    )
    service = build(common, settings)
    async with service._lifespan(service.app):
        yield Harness(kafka_bootstrap, prefix)


def updated(user_id: str, **fields: object) -> DirectoryCustomerUpdated:
    data = DirectoryCustomerUpdatedData(user_id=user_id, **fields)  # type: ignore[arg-type]
    return new_envelope(DirectoryCustomerUpdated, data)  # type: ignore[return-value]


async def test_a_customer_published_on_the_directory_topic_identifies_the_next_incident(harness: Harness) -> None:
    await harness.publish_customer(
        updated(
            "c-77",
            name="Hedy Lamarr",
            email="hedy@example.com",
            phone="+1 (202) 555-0199",
            location="Vienna office",
            department="Radio",
            hardware=["Pixel 8"],
            software=["Android 15"],
        )  # fmt: skip
    )
    found = await wait_for(lambda: _identified_as(harness, "c-77", phone="+1 202 555 0199"), timeout=30)
    assert (found.name, found.location, found.hardware, found.software) == (
        "Hedy Lamarr",
        "Vienna office",
        ["Pixel 8"],
        ["Android 15"],
    )


async def _identified_as(harness: Harness, customer_id: str, **contact: str):  # type: ignore[no-untyped-def]
    customer = (await harness.identify(**contact)).data.customer
    return customer if customer.customer_id == customer_id else None


async def test_a_customer_removed_on_the_topic_is_no_longer_identified(harness: Harness) -> None:
    await harness.publish_customer(updated("c-78", name="Temp Worker", email="temp@example.com"))
    await wait_for(lambda: _identified_as(harness, "c-78", email="temp@example.com"), timeout=30)
    removal = new_envelope(DirectoryCustomerRemoved, DirectoryCustomerRemovedData(user_id="c-78"))
    await harness.publish_customer(removal)  # type: ignore[arg-type]

    async def unidentified() -> bool:
        return not (await harness.identify(email="temp@example.com")).data.customer.identified

    assert await wait_for(unidentified, timeout=30)


async def test_an_entry_that_cannot_be_stored_is_dead_lettered_with_the_reason(harness: Harness) -> None:
    await harness.publish_customer(updated("c-79", name="Copy", email="ADA.LOVELACE@example.com"))
    dead = await read_all(harness.bootstrap, harness.prefix + DEAD_LETTERS.name, at_least=1, timeout=30)
    reasons = [dict(r.headers)["dlt.reason"].decode() for r in dead]
    assert any("email 'ada.lovelace@example.com' is already used by customer 'u-1001'" in r for r in reasons), reasons
