"""The real ticket service, as a process on a free loopback port, for the client's tests.

``python -m services.tickets`` runs with its own topics and SQLite file, so
the client talks to it over a real socket exactly as an agent's would (and a
test can stop and restart it to drop the connections). Tickets are put in it
through the service's own handlers, on the same database file, as intake and
routing would have them: that is set-up, not the behaviour under test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from contracts.commands import RouteTicket, RouteTicketData
from contracts.envelope import new_envelope
from contracts.incidents import (
    Channel,
    CustomerProfile,
    IncidentIdentified,
    IncidentIdentifiedData,
)
from contracts.sla import Deadline, SlaDeadlinesChanged, SlaDeadlinesChangedData
from runtime.consumer import Delivery
from runtime.topics_admin import ensure_topics
from services.tickets.adapters import read_model
from services.tickets.adapters.database import TicketDatabase
from tests.support.tokens import AUTH_ENV, mint
from services.tickets.config import Settings
from services.tickets.handlers import (
    apply_commands,
    open_tickets,
    record_deadlines,
    ticket_id_for,
)
from tests.support.kafka import delete_topics

ROOT = Path(__file__).resolve().parents[2]
# An integration's API key, configured as TICKETS_API_KEYS (name -> sha256 of the key).
API_KEY = "crm-key-0123456789"
API_KEYS = {"crm": hashlib.sha256(API_KEY.encode()).hexdigest()}
START_TIMEOUT_S = 60.0
RUN_ASYNC_TIMEOUT_S = 120.0  # set-up through the service's own handlers, or topics created and deleted
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync or async code (on a thread with its own loop), bounded."""

    async def bounded() -> T:
        try:
            return await asyncio.wait_for(coro, RUN_ASYNC_TIMEOUT_S)
        except TimeoutError:
            raise TimeoutError(f"{coro.__qualname__} did not finish within {RUN_ASYNC_TIMEOUT_S:g} s") from None

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, bounded()).result()


@dataclass
class TicketService:
    """One ticket service process, and what a test needs around it."""

    kafka_bootstrap: str
    topic_prefix: str
    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.directory / 't.db'}"

    @property
    def settings(self) -> Settings:
        return Settings(database_url=self.database_url)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": self.topic_prefix,
            "KAFKA_RETRY_BACKOFF_MS": "10",
            "LOG_LEVEL": "WARNING",
            "TICKETS_DATABASE_URL": self.database_url,
            "TICKETS_HTTP_HOST": "127.0.0.1",
            "TICKETS_HTTP_PORT": str(self.port),
            **AUTH_ENV,
            "TICKETS_API_KEYS": json.dumps(API_KEYS),
            "TICKETS_SHUTDOWN_TIMEOUT_S": "2",
        }

    def token(
        self,
        agent: str = "alice",
        roles: tuple[str, ...] = ("agent",),
        ttl_s: int = 3600,
    ) -> str:
        return mint(agent, roles, ttl_s)

    # The process

    def start(self) -> None:
        log = (self.directory / "service.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.tickets"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the ticket service exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the ticket service was not ready within {START_TIMEOUT_S} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """Stop it dead (SIGKILL): its connections drop without a goodbye, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    @contextmanager
    def down(self) -> Iterator[None]:
        """Killed for the block, and started again however the block ends."""
        self.kill()
        try:
            yield
        finally:
            self.start()

    def log(self) -> str:
        path = self.directory / "service.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # Tickets in it

    def open_tickets(
        self,
        count: int,
        *,
        queue: str = "service-desk",
        priority: int = 3,
        customer_id: str = "c-9",
        subject: str = "Call",
    ) -> list[str]:
        """Open and route ``count`` tickets (as intake and routing would), one after the other; their numbers."""
        return run_async(self._open(count, queue, priority, customer_id, subject))

    def open_ticket(self, **kwargs: Any) -> str:
        return self.open_tickets(1, **kwargs)[0]

    def publish_deadlines(self, number: str, *, hours: float = 4) -> None:
        run_async(self._deadlines(number, hours))

    async def _open(self, count: int, queue: str, priority: int, customer_id: str, subject: str) -> list[str]:
        db = TicketDatabase(self.database_url)
        try:
            base = datetime.now(UTC)
            incidents = [
                new_envelope(
                    IncidentIdentified,
                    IncidentIdentifiedData(
                        channel=Channel.PHONE,
                        channel_message_id=uuid.uuid4().hex,
                        received_at=base + timedelta(milliseconds=i),
                        subject=f"{subject} {i + 1}",
                        description=f"{subject} {i + 1}: details",
                        customer=CustomerProfile(
                            identified=True,
                            identified_by="phone",
                            customer_id=customer_id,
                            phone="+4930123456",
                        ),
                    ),
                )
                for i in range(count)
            ]
            opening = open_tickets(db, lambda: None)
            for i, incident in enumerate(incidents):
                # One at a time, as contacts arrive: each ticket opens after the one before,
                # so the queue's line (oldest first) is the order they were asked for in.
                await opening([Delivery(incident, "t", 0, i, None)])
            ids = [ticket_id_for(m.data) for m in incidents]
            route = RouteTicketData(
                priority=priority,  # type: ignore[arg-type]
                priority_rule="r",
                priority_reason="x",
                queue=queue,
                queue_rule="r",
                queue_reason="x",
            )
            commands = [new_envelope(RouteTicket, route, ticket_id=i, correlation_id="c") for i in ids]
            await apply_commands(db, lambda: None)([Delivery(c, "t", 0, i, None) for i, c in enumerate(commands)])
            async with db.reader.connect() as conn:
                return [await read_model.number_of(conn, i) for i in ids]
        finally:
            await db.close()

    async def _deadlines(self, number: str, hours: float) -> None:
        db = TicketDatabase(self.database_url)
        try:
            async with db.reader.connect() as conn:
                rows = await read_model.list_tickets(conn, read_model.TicketQuery(limit=500))
            ticket_id = next(r["ticket_id"] for r in rows if r["number"] == number)
            data = SlaDeadlinesChangedData(
                number=number,
                policy="standard",
                calendar="office",
                deadlines=[
                    Deadline(
                        kind="resolution",
                        due_at=datetime.now(UTC) + timedelta(hours=hours),
                        state="running",
                    )
                ],
            )
            message = new_envelope(SlaDeadlinesChanged, data, ticket_id=ticket_id)
            await record_deadlines(db)([Delivery(message, "t", 0, 0, None)])
        finally:
            await db.close()


@pytest.fixture(scope="session", name="ticket_service")
def ticket_service_fixture(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TicketService]:
    """The ticket service with fresh topics: one process, shared by every test that uses it.

    Starting it takes seconds, so the tests share it and keep out of each
    other's way with queues, customers and tickets of their own. A test that
    restarts it (the stream's) leaves it running again. It is defined once
    (tests/conftest.py loads this module as a plugin; a test module that
    imported the fixture would get a process of its own), and it is stopped
    right after the last test that uses it (tests/support/leftover_processes.py),
    not at the end of the run: idle, it still polls Kafka.
    """
    prefix = f"c{uuid.uuid4().hex[:10]}."
    run_async(ensure_topics(kafka_bootstrap, prefix, partitions=1))
    service = TicketService(kafka_bootstrap, prefix, tmp_path_factory.mktemp("tickets"))
    try:
        service.start()
        yield service
    finally:
        service.stop()
        run_async(delete_topics(kafka_bootstrap, prefix))
