"""Intake against the real broker: posted and pushed incidents come out identified, once per id.

One intake service runs for the whole module on its own topics; each test
uses its own channel message ids and looks only for its own records.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiokafka import ConsumerRecord

from contracts.incidents import IncidentIdentified
from contracts.topics import DEAD_LETTERS, INCIDENTS_IDENTIFIED, INCIDENTS_REPORTED
from runtime.settings import CommonSettings
from runtime.topics_admin import ensure_topics
from services.intake.bootstrap import build
from services.intake.config import Settings
from services.intake.domain import (
    INTAKE_NAMESPACE,
    identified_event_id,
    reported_event_id,
)
from tests.support.kafka import incident, produce, read_all, wait_for

ROOT = Path(__file__).resolve().parents[2]


class Intake:
    def __init__(self, bootstrap: str, prefix: str, client: httpx.AsyncClient) -> None:
        self.bootstrap = bootstrap
        self.client = client
        self.reported = prefix + INCIDENTS_REPORTED.name
        self.identified = prefix + INCIDENTS_IDENTIFIED.name
        self.dead_letters = prefix + DEAD_LETTERS.name

    async def identified_for(self, channel_message_id: str, count: int = 1) -> list[IncidentIdentified]:
        """The identified incidents of one channel message, waiting until ``count`` are on the topic."""

        async def ours() -> list[ConsumerRecord]:
            records = await read_all(self.bootstrap, self.identified, at_least=1, timeout=5)
            found = [r for r in records if json.loads(r.value)["data"]["channel_message_id"] == channel_message_id]
            return found if len(found) >= count else []

        found = await wait_for(ours, timeout=30)
        return [IncidentIdentified.model_validate_json(r.value) for r in found]


@pytest.fixture(scope="module")
async def intake(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Intake]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix, partitions=3)
    common = CommonSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=prefix, kafka_retry_backoff_ms=10)
    settings = Settings(
        directory_file=ROOT / "services/intake/directory.example.yaml",
        database_url=f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('intake') / 'intake.db'}",
        default_region="GB",
        smtp_enabled=False,
    )
    service = build(common, settings)
    async with service._lifespan(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield Intake(kafka_bootstrap, prefix, client)


async def test_a_posted_incident_comes_out_identified_and_enriched(intake: Intake) -> None:
    message_id = f"web-{uuid.uuid4().hex}"
    response = await intake.client.post(
        "/v1/incidents",
        json={
            "channel_message_id": message_id,
            "contact": {"phone": "020 7946 0018", "name": "Ada"},
            "subject": "SAP GUI crashes on start",
            "description": "Since this morning's update.",
            "components": ["sap"],
            "impact": "medium",
            "urgency": "high",
        },
        headers={"X-Correlation-ID": "trace-42"},
    )
    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "channel_message_id": message_id, "correlation_id": "trace-42"}

    [identified] = await intake.identified_for(message_id)
    customer = identified.data.customer
    assert (customer.identified, customer.identified_by, customer.customer_id) == (True, "phone", "u-1001")
    assert (customer.name, customer.email, customer.phone) == ("Ada Lovelace", "ada.lovelace@example.com", "+442079460018")
    assert (customer.department, customer.location, customer.vip) == ("Finance", "London HQ, 3rd floor", True)
    assert "SAP GUI 8.0" in customer.software and customer.hardware
    assert identified.data.subject == "SAP GUI crashes on start" and identified.data.components == ["sap"]
    assert (identified.data.impact, identified.data.urgency) == ("medium", "high")
    reported_id = reported_event_id("web", message_id)
    assert identified.causation_id == str(reported_id)
    assert identified.correlation_id == "trace-42"
    assert identified.ticket_id is None


async def test_a_post_repeated_with_the_same_idempotency_key_is_the_same_incident(intake: Intake) -> None:
    key = f"mobile-{uuid.uuid4().hex}"
    body = {"channel": "mobile", "contact": {"email": "GRACE.HOPPER@example.com"}, "subject": "App will not sync"}
    first = await intake.client.post("/v1/incidents", json=body, headers={"Idempotency-Key": key})
    again = await intake.client.post("/v1/incidents", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()

    identified = await intake.identified_for(key, count=2)
    assert len(identified) == 2
    reported_id = reported_event_id("mobile", key)
    assert {m.event_id for m in identified} == {uuid.uuid5(INTAKE_NAMESPACE, f"identified:{reported_id}")}
    assert identified[0].data.customer.customer_id == "u-1002"


async def test_a_redelivered_report_yields_the_same_identified_event_id(intake: Intake) -> None:
    reported = incident("Cannot print", phone="(0117) 496-0999", name="Unknown Caller")
    raw = reported.model_dump_json().encode()
    key = reported.data.partition_key.encode()
    await produce(intake.bootstrap, intake.reported, raw, key=key)
    await produce(intake.bootstrap, intake.reported, raw, key=key)  # the integration retried

    identified = await intake.identified_for(reported.data.channel_message_id, count=2)
    assert len(identified) == 2
    assert identified[0].event_id == identified[1].event_id == identified_event_id(reported)
    assert identified[0].model_dump(exclude={"occurred_at"}) == identified[1].model_dump(exclude={"occurred_at"})
    customer = identified[0].data.customer
    assert (customer.identified, customer.phone, customer.name) == (False, "+441174960999", "Unknown Caller")
    assert identified[0].correlation_id == reported.correlation_id


async def test_garbage_on_the_reported_topic_is_dead_lettered_and_the_next_incident_goes_through(intake: Intake) -> None:
    key = b"integration:garbage-then-good"  # one key: one partition, so the good one comes after both bad ones
    not_json = b"\x00\xffthis is not an incident"
    no_subject = json.loads(incident("x").model_dump_json())
    del no_subject["data"]["subject"]
    invalid = json.dumps(no_subject).encode()
    good = incident("After the garbage", email="tbl@example.com")
    await produce(intake.bootstrap, intake.reported, not_json, key=key)
    await produce(intake.bootstrap, intake.reported, invalid, key=key)
    await produce(intake.bootstrap, intake.reported, good.model_dump_json().encode(), key=key)

    [identified] = await intake.identified_for(good.data.channel_message_id)
    assert identified.data.customer.customer_id == "u-1005"

    dead = await read_all(intake.bootstrap, intake.dead_letters, at_least=2)
    by_value = {r.value: {k: v.decode() for k, v in r.headers} for r in dead}
    assert set(by_value) == {not_json, invalid}
    for headers in by_value.values():
        assert headers["dlt.origin.topic"] == intake.reported
        assert headers["dlt.consumer.group"] == intake.reported.removesuffix(INCIDENTS_REPORTED.name) + "helpdesk-intake"
        assert headers["dlt.kind"] == "invalid"
        assert int(headers["dlt.origin.offset"]) >= 0 and int(headers["dlt.origin.partition"]) >= 0
    assert "not a helpdesk message envelope" in by_value[not_json]["dlt.reason"]
    assert "data.subject: Field required" in by_value[invalid]["dlt.reason"]


async def test_a_posted_reply_carries_the_ticket_number_it_answers(intake: Intake) -> None:
    message_id = f"web-{uuid.uuid4().hex}"
    body = {"channel_message_id": message_id, "contact": {"user_id": "u-1003"}, "subject": "Re: still slow", "reply_to_number": "HD-88"}
    assert (await intake.client.post("/v1/incidents", json=body)).status_code == 202
    [identified] = await intake.identified_for(message_id)
    assert (identified.data.reply_to_number, identified.data.customer.customer_id) == ("HD-88", "u-1003")
    bad = await intake.client.post("/v1/incidents", json={**body, "reply_to_number": "ticket 88"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reply_to_number"
