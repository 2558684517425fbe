"""The flood guard on the topic path, over the real broker: a flooded incident is set aside, never lost."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from contracts.incidents import IncidentReported
from contracts.topics import DEAD_LETTERS, INCIDENTS_IDENTIFIED, INCIDENTS_REPORTED
from runtime.settings import CommonSettings
from runtime.topics_admin import ensure_topics
from services.intake.bootstrap import build
from services.intake.config import Settings
from tests.support.kafka import incident, produce, read_all, wait_for

ROOT = Path(__file__).resolve().parents[2]
TOPIC_LIMIT = 3


class Intake:
    def __init__(self, bootstrap: str, prefix: str, client: httpx.AsyncClient) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.client = client

    async def push(self, message: IncidentReported) -> None:
        """What an integration does: publish straight onto the reported topic."""
        topic = self.prefix + INCIDENTS_REPORTED.name
        await produce(self.bootstrap, topic, message.model_dump_json().encode(), message.data.partition_key.encode())

    async def identified_subjects(self, sender: str, at_least: int) -> list[str]:
        return await self.identified_where(lambda data: data["contact"].get("user_id") == sender, at_least)

    async def identified_where(self, ours: Callable[[dict[str, Any]], bool], at_least: int = 1) -> list[str]:
        async def enough() -> list[str] | None:
            records = await read_all(self.bootstrap, self.prefix + INCIDENTS_IDENTIFIED.name, timeout=5)
            values = map(json.loads, (r.value for r in records))
            subjects = [value["data"]["subject"] for value in values if ours(value["data"])]
            return subjects if len(subjects) >= at_least else None

        return await wait_for(enough, timeout=30)

    async def set_aside(self, at_least: int) -> list[tuple[dict[str, str], IncidentReported]]:
        async def enough() -> list[tuple[dict[str, str], IncidentReported]] | None:
            records = await read_all(self.bootstrap, self.prefix + DEAD_LETTERS.name, timeout=5)
            found = [
                ({k: v.decode() for k, v in r.headers}, IncidentReported.model_validate_json(r.value)) for r in records
            ]
            return found if len(found) >= at_least else None

        return await wait_for(enough, timeout=30)


async def running_intake(
    bootstrap: str, tmp_path_factory: pytest.TempPathFactory, **flood: float
) -> AsyncIterator[Intake]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(bootstrap, prefix, partitions=3)
    common = CommonSettings(kafka_bootstrap_servers=bootstrap, kafka_topic_prefix=prefix, kafka_retry_backoff_ms=10)
    settings = Settings(
        directory_file=ROOT / "services/intake/directory.example.yaml",
        database_url=f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('intake') / 'intake.db'}",
        smtp_enabled=False,
        flood_window_s=3600,
        **flood,
    )
    service = build(common, settings)
    async with service._lifespan(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield Intake(bootstrap, prefix, client)


@pytest.fixture(scope="module")
async def intake(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Intake]:
    limits = {"flood_max_per_sender": 10, "flood_topic_max_per_sender": TOPIC_LIMIT}
    async for running in running_intake(kafka_bootstrap, tmp_path_factory, **limits):
        yield running


@pytest.fixture(scope="module")
async def unconfigured_intake(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Intake]:
    """INTAKE_FLOOD_TOPIC_MAX_PER_SENDER not set; the channels' own limit is low."""
    async for running in running_intake(kafka_bootstrap, tmp_path_factory, flood_max_per_sender=1):
        yield running


def flooded_count() -> float:
    labels = {"channel": "integration", "path": "topic"}
    return REGISTRY.get_sample_value("helpdesk_intake_flooded_total", labels) or 0.0


async def test_a_flooded_incident_goes_whole_to_the_dead_letter_topic_and_a_redelivery_counts_once(
    intake: Intake,
) -> None:
    sender = f"monitoring-{uuid.uuid4().hex[:6]}"
    before = flooded_count()
    first = incident("Disk full on db-1", user_id=sender)
    await intake.push(first)
    await intake.push(incident("Disk full on db-2", user_id=sender))
    await intake.identified_subjects(sender, at_least=2)
    await intake.push(first)  # Kafka redelivers the first: it must not use up the sender's third contact
    await intake.push(incident("Disk full on db-3", user_id=sender))
    await intake.identified_subjects(sender, at_least=4)  # the third and the redelivered first, in either order
    over = [incident(f"Disk full on db-{n}", user_id=sender) for n in (4, 5)]
    for message in over:
        await intake.push(message)

    [(headers, kept), *rest] = await intake.set_aside(at_least=2)
    assert sorted([kept.event_id, *(m.event_id for _, m in rest)]) == sorted(m.event_id for m in over)
    assert kept in over  # the message itself, replayable as it is
    assert headers["dlt.kind"] == "flooded" and sender in headers["dlt.reason"]
    assert headers["dlt.origin.topic"] == intake.prefix + INCIDENTS_REPORTED.name
    assert headers["dlt.consumer.group"] == intake.prefix + "helpdesk-intake"
    assert headers["message-type"] == "incident.reported" and "dlt.origin.offset" in headers

    subjects = await intake.identified_subjects(sender, at_least=4)
    assert sorted(set(subjects)) == ["Disk full on db-1", "Disk full on db-2", "Disk full on db-3"]
    assert flooded_count() - before == 2


async def test_incidents_intake_published_itself_are_not_counted_again_on_the_topic(intake: Intake) -> None:
    sender = f"portal-{uuid.uuid4().hex[:6]}"
    for n in range(TOPIC_LIMIT + 2):  # within the HTTP limit, over the topic path's
        body = {"contact": {"user_id": sender}, "subject": f"Portal slow {n}"}
        assert (await intake.client.post("/v1/incidents", json=body)).status_code == 202
    subjects = await intake.identified_subjects(sender, at_least=TOPIC_LIMIT + 2)
    assert len(set(subjects)) == TOPIC_LIMIT + 2


async def test_incidents_without_a_sender_identity_are_not_counted_against_each_other_on_the_topic(
    intake: Intake,
) -> None:
    before = flooded_count()
    batch = uuid.uuid4().hex[:6]
    # A CTI system reporting calls from withheld numbers: no user id, e-mail, phone or handle.
    for n in range(TOPIC_LIMIT + 3):
        await intake.push(incident(f"Withheld caller {batch}-{n}"))
    ours = f"Withheld caller {batch}-"
    subjects = await intake.identified_where(lambda data: data["subject"].startswith(ours), TOPIC_LIMIT + 3)
    assert len(set(subjects)) == TOPIC_LIMIT + 3
    assert flooded_count() == before


async def test_the_topic_path_has_no_flood_guard_unless_configured(unconfigured_intake: Intake) -> None:
    sender = f"cti-{uuid.uuid4().hex[:6]}"
    for n in range(4):  # over INTAKE_FLOOD_MAX_PER_SENDER (1), which holds only on intake's own channels
        await unconfigured_intake.push(incident(f"Call {n}", user_id=sender))
    subjects = await unconfigured_intake.identified_subjects(sender, at_least=4)
    assert sorted(subjects) == ["Call 0", "Call 1", "Call 2", "Call 3"]
    records = await read_all(unconfigured_intake.bootstrap, unconfigured_intake.prefix + DEAD_LETTERS.name, timeout=1)
    assert records == []
