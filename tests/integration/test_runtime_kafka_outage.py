"""A broker outage, for real: the service logs it once, counts it, and its messages flow again.

The suite's broker is shared and cannot be stopped, so the test starts a private one
(tests/support/private_broker.py), runs intake against it as a process (its real logging),
stops the broker for OUTAGE_S and starts it again on the same ports and data.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.topics import INCIDENTS_IDENTIFIED, INCIDENTS_REPORTED
from devtools.processes import Process, free_port
from runtime.topics_admin import ensure_topics
from tests.support.kafka import incident, produce, read_all, wait_for
from tests.support.private_broker import PrivateBroker

ROOT = Path(__file__).resolve().parents[2]
OUTAGE_S = 10


def log_lines(path: Path, after: int) -> list[dict[str, Any]]:
    """The service's JSON log lines written after byte ``after``."""
    text = path.read_bytes()[after:].decode(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def metric(text: str, name: str) -> float:
    [value] = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(f'{name}{{service="intake"}}')]
    return value


async def identified(bootstrap: str, message_id: str) -> bool:
    records = await read_all(bootstrap, INCIDENTS_IDENTIFIED.name, timeout=5)
    return any(json.loads(r.value)["data"]["channel_message_id"] == message_id for r in records)


async def report_and_see_it_identified(bootstrap: str) -> None:
    contact = incident("VPN down")
    await produce(bootstrap, INCIDENTS_REPORTED.name, contact.model_dump_json().encode(), key=b"c-1")
    await wait_for(lambda: identified(bootstrap, contact.data.channel_message_id), timeout=60)


@pytest.mark.timeout(480)  # two broker start-ups and the outage itself, on a loaded machine
async def test_a_broker_outage_is_logged_once_counted_and_the_messages_flow_again(tmp_path: Path) -> None:
    broker = PrivateBroker(tmp_path)
    await asyncio.to_thread(broker.format)
    await asyncio.to_thread(broker.start)
    http_port = free_port()
    intake = Process(
        "intake", [sys.executable, "-m", "services.intake"],
        {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "KAFKA_TOPIC_PREFIX": "", "KAFKA_RETRY_BACKOFF_MS": "10",
         "INTAKE_HTTP_PORT": str(http_port), "INTAKE_SMTP_PORT": str(free_port()),
         "INTAKE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}", "PYTHONUNBUFFERED": "1"},
        tmp_path / "intake.log", ready_url=f"http://127.0.0.1:{http_port}/readyz",
    )
    try:
        await ensure_topics(broker.bootstrap, "", partitions=1)
        intake.start()
        await asyncio.to_thread(intake.wait_ready, 90)
        await report_and_see_it_identified(broker.bootstrap)
        before_outage = intake.log_path.stat().st_size

        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(broker.start)
        await wait_for(lambda: any(line["event"] == "kafka reachable again"
                                   for line in log_lines(intake.log_path, before_outage)), timeout=60)

        await report_and_see_it_identified(broker.bootstrap)
        async with httpx.AsyncClient(timeout=10) as client:
            metrics = (await client.get(f"http://127.0.0.1:{http_port}/metrics")).text
    finally:
        intake.stop()
        await asyncio.to_thread(broker.stop)

    lines = log_lines(intake.log_path, before_outage)
    about_kafka = [line for line in lines if line["logger"].startswith(("aiokafka", "faststream", "runtime.kafka"))]
    assert [(line["level"], line["event"]) for line in about_kafka] == [
        ("warning", "kafka unreachable"),
        ("info", "kafka reachable again"),
    ], f"{len(about_kafka)} lines about Kafka, starting {about_kafka[:5]}"
    down, up = about_kafka
    assert down["degraded"] is True and down["error"]  # the client's first error, whichever request met it
    assert up["outage_s"] >= OUTAGE_S
    assert [line["event"] for line in lines if line["level"] in ("warning", "error", "critical")] == ["kafka unreachable"]
    assert metric(metrics, "helpdesk_kafka_outages_total") == 1
    assert metric(metrics, "helpdesk_kafka_reachable") == 1
    assert metric(metrics, "helpdesk_kafka_connection_errors_total") > 0
