"""The SLA figures come from escalation's store: two replicas on one database answer the same, and a
restart keeps them; a database from before gets the figures' tables, and a replay counts nothing twice.
The replicas are real processes (``python -m services.escalation``): nothing is shared between them but
the broker and the database."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from contracts.envelope import Envelope, new_envelope
from contracts.tickets import (
    TicketClaimed,
    TicketClaimedData,
    TicketPrioritised,
    TicketPrioritisedData,
    TicketResolved,
    TicketResolvedData,
    TicketRouted,
    TicketRoutedData,
)
from contracts.topics import TICKET_EVENTS_TOPIC
from runtime.consumer import Delivery
from services.escalation.adapters.store import DeadlineStore, sla_breaches, sla_measures
from services.escalation.bootstrap import escalation_policy
from services.escalation.clock import SystemClock
from services.escalation.config import Settings
from services.escalation.handlers import TicketEventHandler
from tests.integration.test_escalation_service import opened
from tests.support.kafka import produce
from tests.support.tokens import development_bearer

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180  # an import under a heavily loaded CI machine has taken over a minute
POLICIES = """\
default_calendar: 24x7
policies:
  - name: everything
    first_response: 60
"""

# Two tickets answered (2 and 0.5 minutes) and resolved (10 and 1.5 minutes) at priority 2 in "hardware";
# one opened ten minutes ago that nobody claims, at the default priority 3 and in no queue: it breaches.
EXPECTED = {
    "first_response": [{"priority": 2, "queue": "hardware", "count": 2, "mean_s": 75.0}],
    "resolution": [{"priority": 2, "queue": "hardware", "count": 2, "mean_s": 345.0}],
    "breaches": [{"priority": 3, "queue": "", "target": "first_response", "count": 1}],
}


class Escalation:
    """``python -m services.escalation`` on a free loopback port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._env = {**env, "ESCALATION_HTTP_PORT": str(self.port)}
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "services.escalation"], cwd=ROOT, env=self._env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"escalation exited with {self._process.returncode}:\n{self._log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"escalation was not ready within {START_TIMEOUT_S} s:\n{self._log.read_text()}")

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    async def figures(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5, headers=development_bearer("lead-1", ("agent", "lead"))) as client:
            response = await client.get(f"http://127.0.0.1:{self.port}/v1/sla/metrics")
        response.raise_for_status()
        return response.json()


@contextmanager
def replicas(count: int, env: dict[str, str], folder: Path) -> Iterator[list[Escalation]]:
    running = [Escalation(env, folder / f"escalation-{n}.log") for n in range(count)]
    try:
        for replica in running:  # one after the other: the first creates the tables
            replica.start()
        yield running
    finally:
        for replica in running:
            replica.stop()


def answered(ticket_id: uuid.UUID, number: str, at: datetime, claim_after_s: float, resolve_after_s: float) -> list:
    def event(model: type[Envelope[Any]], data: Any, after_s: float) -> Envelope[Any]:
        return new_envelope(model, data, ticket_id=ticket_id, occurred_at=at + timedelta(seconds=after_s))

    return [
        opened(ticket_id, number, at),
        event(TicketPrioritised, TicketPrioritisedData(number=number, version=2, priority=2, rule="r", reason="x",
                                                       by="routing"), 1),
        event(TicketRouted, TicketRoutedData(number=number, version=3, queue="hardware", rule="r", reason="x"), 1),
        event(TicketClaimed, TicketClaimedData(number=number, version=4, agent_id="a-1"), claim_after_s),
        event(TicketResolved, TicketResolvedData(number=number, version=5, resolution="fixed", resolved_by="a-1"),
              resolve_after_s),
    ]


async def settled(instances: list[Escalation], timeout: float = 180) -> list[dict[str, Any]]:
    """The figures of every instance, once the first shows everything expected (or the timeout passes)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if await instances[0].figures() == EXPECTED:
            break
        await asyncio.sleep(0.2)
    return [await instance.figures() for instance in instances]


async def test_two_replicas_answer_the_same_sla_figures_and_a_restart_keeps_them(
    kafka_bootstrap: str, topic_prefix: str, postgres_database: str, tmp_path: Path
) -> None:
    # PostgreSQL: what replicas share in a deployment (SQLite is one machine's store; the figures' code is the same).
    database_url = postgres_database
    policies = tmp_path / "sla.yaml"
    policies.write_text(POLICIES, encoding="utf-8")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "KAFKA_RETRY_BACKOFF_MS": "10",
        "LOG_LEVEL": "WARNING",
        "ESCALATION_DATABASE_URL": database_url,
        "ESCALATION_HTTP_HOST": "127.0.0.1",
        "ESCALATION_POLICIES_FILE": str(policies),
        "ESCALATION_TIMER_INTERVAL_S": "0.05",
    }
    now = datetime.now(UTC)
    events = [
        *answered(uuid.uuid4(), "HD-1", now, claim_after_s=120, resolve_after_s=600),
        *answered(uuid.uuid4(), "HD-2", now, claim_after_s=30, resolve_after_s=90),
        opened(uuid.uuid4(), "HD-3", now - timedelta(minutes=10)),
    ]
    topic = TICKET_EVENTS_TOPIC.qualified(topic_prefix)

    with replicas(2, env, tmp_path) as (first, second):
        for event in events:
            await produce(kafka_bootstrap, topic, event.model_dump_json().encode(), key=str(event.ticket_id).encode())
        assert await settled([first, second]) == [EXPECTED, EXPECTED]

    with replicas(1, env, tmp_path) as (alone,):  # every replica stopped, and one started afresh
        assert await alone.figures() == EXPECTED


async def test_a_database_from_before_gets_the_figures_tables_and_a_replay_counts_nothing_twice(
    database_url: str, tmp_path: Path
) -> None:
    policies = tmp_path / "sla.yaml"
    policies.write_text(POLICIES, encoding="utf-8")
    policy = escalation_policy(Settings(policies_file=policies))
    store = DeadlineStore(database_url)
    try:
        await store.create_schema()
        async with store.writer.begin() as conn:  # the tables of the version before these figures
            await conn.run_sync(lambda sync: sla_measures.drop(sync))
            await conn.run_sync(lambda sync: sla_breaches.drop(sync))
        await store.create_schema()  # what the service does at start-up: create_all adds the missing tables

        now = datetime.now(UTC)
        events = answered(uuid.uuid4(), "HD-1", now, claim_after_s=120, resolve_after_s=600)
        handler = TicketEventHandler(store, policy, SystemClock())
        await handler([Delivery(e, "events", 0, n, None) for n, e in enumerate(events)])
        await store.clear()  # a rebuild forgets the clocks and applied ids, then replays the log
        await handler([Delivery(e, "events", 0, n, None) for n, e in enumerate(events)])

        figures = await store.sla_figures()
        assert figures.timings == [("first_response", 2, "hardware", 1, 120.0), ("resolution", 2, "hardware", 1, 600.0)]
    finally:
        await store.close()
