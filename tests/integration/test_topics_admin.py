"""The topics command keeps existing topics' configs in line with the registry, on the real broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.topics import TICKET_EVENTS_TOPIC
from tests.support.kafka import delete_topics, wait_for

REPO = Path(__file__).resolve().parents[2]
SEVEN_DAYS_MS = str(7 * 24 * 3600 * 1000)


@pytest.fixture
async def prefix(kafka_bootstrap: str) -> AsyncIterator[str]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    yield prefix
    await delete_topics(kafka_bootstrap, prefix)


async def topic_config(bootstrap: str, name: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        [(_error, _message, _type, _name, entries)] = response.resources
        return {entry[0]: entry[1] for entry in entries}
    finally:
        await admin.close()


async def create_as_an_older_release_did(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        config = {"retention.ms": SEVEN_DAYS_MS, "min.insync.replicas": "1", "max.message.bytes": "2000000"}
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs=config)])
    finally:
        await admin.close()


def topics_command(bootstrap: str, prefix: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_TOPIC_PREFIX": prefix, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "runtime.topics_admin"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )


async def test_the_topics_command_makes_an_existing_seven_day_ticket_events_topic_keep_its_events_forever(
    kafka_bootstrap: str, prefix: str
) -> None:
    events = TICKET_EVENTS_TOPIC.qualified(prefix)
    await create_as_an_older_release_did(kafka_bootstrap, events)
    assert (await topic_config(kafka_bootstrap, events))["retention.ms"] == SEVEN_DAYS_MS

    run = await asyncio.to_thread(topics_command, kafka_bootstrap, prefix)
    assert run.returncode == 0, run.stderr
    assert f"config of {events} brought in line: retention.bytes=-1, retention.ms=-1" in run.stdout

    # The controller has committed the change when AlterConfigs answers; the broker that describes the
    # topic applies it from the metadata log a moment later (KRaft), so wait for it to show.
    async def kept_forever() -> bool:
        config = await topic_config(kafka_bootstrap, events)
        return (config["retention.ms"], config["retention.bytes"]) == ("-1", "-1")

    await wait_for(kept_forever, timeout=30)
    config = await topic_config(kafka_bootstrap, events)
    # AlterConfigs replaces a topic's whole config: what the registry does not name is kept, not reset.
    assert (config["min.insync.replicas"], config["max.message.bytes"]) == ("1", "2000000")

    again = await asyncio.to_thread(topics_command, kafka_bootstrap, prefix)
    assert again.returncode == 0, again.stderr
    assert "(0 created, 0 reconfigured)" in again.stdout
