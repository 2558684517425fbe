"""Delivery guarantees of the shared runtime, against the real broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contracts.incidents import IncidentReported
from contracts.topics import DEAD_LETTERS, INCIDENTS_REPORTED
from runtime.consumer import Delivery, PoisonMessage
from runtime.service import Service
from runtime.settings import CommonSettings, HttpSettings
from tests.support.kafka import incident, produce, read_all, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _service(bootstrap: str, prefix: str, **common: Any) -> Service:
    settings = CommonSettings(
        kafka_bootstrap_servers=bootstrap, kafka_topic_prefix=prefix, kafka_retry_backoff_ms=10, **common
    )
    return Service("delivery-test", settings, HttpSettings(http_port=0), description="test")


async def test_a_poisonous_message_is_dead_lettered_with_reason_and_origin_and_the_next_one_flows(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    svc = _service(kafka_bootstrap, topic_prefix, kafka_max_attempts=3)
    handled: list[str] = []
    attempts: dict[str, int] = {}

    async def handle(batch: Sequence[Delivery[Any]]) -> None:
        for d in batch:
            subject = d.message.data.subject
            attempts[subject] = attempts.get(subject, 0) + 1
            if subject == "poison":
                raise RuntimeError("cannot digest this")
        handled.extend(d.message.data.subject for d in batch)

    svc.subscribe(INCIDENTS_REPORTED, handle, accepts=[IncidentReported], group="g-poison")
    topic = topic_prefix + INCIDENTS_REPORTED.name
    async with svc._lifespan(svc.app):
        poison = incident("poison")
        await produce(kafka_bootstrap, topic, poison.model_dump_json().encode(), key=b"same-key")
        await produce(kafka_bootstrap, topic, incident("after").model_dump_json().encode(), key=b"same-key")
        await wait_for(lambda: "after" in handled)

    dead = await read_all(kafka_bootstrap, topic_prefix + DEAD_LETTERS.name)
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["dlt.reason"] == "RuntimeError: cannot digest this"
    assert headers["dlt.origin.topic"] == topic
    assert headers["dlt.consumer.group"] == topic_prefix + "g-poison"
    assert headers["dlt.attempts"] == "3"
    assert int(headers["dlt.origin.offset"]) >= 0 and int(headers["dlt.origin.partition"]) >= 0
    assert dead[0].value == poison.model_dump_json().encode(), "the original bytes are kept for replay"
    assert dead[0].key == b"same-key"
    assert attempts["poison"] >= 3 and "poison" not in handled


async def test_bytes_that_are_no_message_are_dead_lettered_at_once_as_invalid(kafka_bootstrap: str, topic_prefix: str) -> None:
    svc = _service(kafka_bootstrap, topic_prefix)
    handled: list[str] = []

    async def handle(batch: Sequence[Delivery[Any]]) -> None:
        handled.extend(d.message.data.subject for d in batch)

    svc.subscribe(INCIDENTS_REPORTED, handle, accepts=[IncidentReported], group="g-invalid")
    topic = topic_prefix + INCIDENTS_REPORTED.name
    async with svc._lifespan(svc.app):
        await produce(kafka_bootstrap, topic, b"\x00\xffnot json", key=b"k")
        await produce(kafka_bootstrap, topic, incident("good").model_dump_json().encode(), key=b"k")
        await wait_for(lambda: "good" in handled)

    dead = await read_all(kafka_bootstrap, topic_prefix + DEAD_LETTERS.name)
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["dlt.kind"] == "invalid"
    assert "not a helpdesk message envelope" in headers["dlt.reason"]
    assert headers["dlt.attempts"] == "1"


async def test_a_transient_failure_is_retried_and_not_dead_lettered(kafka_bootstrap: str, topic_prefix: str) -> None:
    svc = _service(kafka_bootstrap, topic_prefix, kafka_max_attempts=4)
    failures = {"left": 2}
    handled: list[str] = []

    async def handle(batch: Sequence[Delivery[Any]]) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database restarting")
        handled.extend(d.message.data.subject for d in batch)

    svc.subscribe(INCIDENTS_REPORTED, handle, accepts=[IncidentReported], group="g-transient")
    async with svc._lifespan(svc.app):
        await produce(kafka_bootstrap, topic_prefix + INCIDENTS_REPORTED.name, incident("flaky").model_dump_json().encode())
        await wait_for(lambda: handled == ["flaky"])
    assert await read_all(kafka_bootstrap, topic_prefix + DEAD_LETTERS.name, at_least=1, timeout=1.0) == []


async def test_a_handler_can_reject_a_message_as_poison_without_retries(kafka_bootstrap: str, topic_prefix: str) -> None:
    svc = _service(kafka_bootstrap, topic_prefix, kafka_max_attempts=5)
    calls: list[str] = []

    async def handle(batch: Sequence[Delivery[Any]]) -> None:
        calls.extend(d.message.data.subject for d in batch)
        raise PoisonMessage("this channel is not supported")

    svc.subscribe(INCIDENTS_REPORTED, handle, accepts=[IncidentReported], group="g-reject")
    async with svc._lifespan(svc.app):
        await produce(kafka_bootstrap, topic_prefix + INCIDENTS_REPORTED.name, incident("nope").model_dump_json().encode())
        dead = await read_all(kafka_bootstrap, topic_prefix + DEAD_LETTERS.name)
    assert calls == ["nope"]
    assert {k: v.decode() for k, v in dead[0].headers}["dlt.reason"] == "rejected by handler: this channel is not supported"


async def test_an_unfinished_message_is_redelivered_after_a_crash(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    """The offset of a message whose handler had not returned is not committed: SIGKILL, restart, it comes again."""
    journal = tmp_path / "journal"
    journal.touch()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_TOPIC_PREFIX": topic_prefix}
    topic = topic_prefix + INCIDENTS_REPORTED.name

    def run_consumer() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.crashy_consumer", str(journal)], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    first = run_consumer()
    try:
        await wait_for(lambda: "ready" in journal.read_text(), timeout=60)
        await produce(kafka_bootstrap, topic, incident("before").model_dump_json().encode(), key=b"k")
        await wait_for(lambda: "done before" in journal.read_text(), timeout=30)
        await produce(kafka_bootstrap, topic, incident("hang").model_dump_json().encode(), key=b"k")
        await wait_for(lambda: "started hang" in journal.read_text(), timeout=30)
    finally:
        first.kill()
        first.wait(timeout=10)

    journal.write_text("")
    second = run_consumer()
    try:
        await wait_for(lambda: "started hang" in journal.read_text(), timeout=60)
        await asyncio.sleep(0.5)
    finally:
        second.kill()
        second.wait(timeout=10)
    text = journal.read_text()
    assert "before" not in text, "a finished message's offset was committed, so it is not delivered again"


async def test_a_service_whose_topics_are_missing_fails_start_up_naming_them(kafka_bootstrap: str) -> None:
    import pytest

    svc = _service(kafka_bootstrap, "nothing-here-yet.")

    async def handle(batch: Sequence[Delivery[Any]]) -> None:
        pass

    svc.subscribe(INCIDENTS_REPORTED, handle, accepts=[IncidentReported])
    with pytest.raises(RuntimeError, match=r"topics missing .*nothing-here-yet\.helpdesk\.incidents\.reported\.v1"):
        async with svc._lifespan(svc.app):
            pass
