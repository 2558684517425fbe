"""The live ticket event stream (GET /v1/stream) over real HTTP: uvicorn on a loopback port, SQLite and PostgreSQL.

Tickets are opened and routed through the service's handlers on a database
connection of the test's own (as another replica would write: the stream sees
them by polling); claims and queue moves go through the HTTP API of the
service under test (the stream is woken at once).
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from contracts.commands import RouteTicket, RouteTicketData
from contracts.envelope import new_envelope
from contracts.incidents import Channel, CustomerProfile, IncidentIdentified, IncidentIdentifiedData
from runtime.consumer import Delivery
from runtime.auth import Authenticator, AuthSettings, TokenVerifier
from runtime.http import Guard, RequestGuard
from runtime.settings import CommonSettings
from runtime import problems
from services.tickets.adapters import event_store, repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.repository import Change
from services.tickets.bootstrap import build
from services.tickets.config import Settings
from tests.support.tokens import AUTH, mint
from services.tickets.domain import open_ticket
from services.tickets.handlers import apply_commands, open_tickets, ticket_id_for
from services.tickets.relay import message_value
from services.tickets.stream import LogTail, stream_router

WAIT_S = 15.0  # a deadline for what must arrive, not a duration anything is expected to take


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a free loopback port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(WAIT_S):
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)  # its graceful shut-down is a few seconds; bounded all the same
        sock.close()


class Feed:
    """The events of one open stream, read as an EventSource would."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.status_code
        assert response.headers["content-type"].startswith("text/event-stream")
        self._lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self) -> dict[str, str]:
        """The next event (comments on the way are noted in ``comments``)."""
        while "comment" in (block := await self._block()):
            self.comments.append(block["comment"])
        return block

    async def events(self, count: int) -> list[dict[str, str]]:
        return [await self.next() for _ in range(count)]

    async def comment(self, text: str) -> None:
        """Wait until the comment ``text`` arrives (events meanwhile are dropped)."""
        while (await self._block()).get("comment") != text:
            pass

    async def _block(self) -> dict[str, str]:
        """The next event's fields, or a comment line as {"comment": text}."""
        async with asyncio.timeout(WAIT_S):
            fields: dict[str, str] = {}
            async for line in self._lines:
                if line == "":
                    if fields:
                        return fields
                elif line.startswith(":"):
                    return {"comment": line[1:].strip()}
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        raise AssertionError("the stream ended")

    async def ended(self) -> bool:
        async with asyncio.timeout(WAIT_S):
            async for line in self._lines:
                if line.startswith(("id:", "event:", "data:")):
                    return False
        return True


@dataclass
class Desk:
    http: httpx.AsyncClient
    db: TicketDatabase  # the test's own connection to the service's database
    settings: Settings

    def auth(self, subject: str = "alice", roles: tuple[str, ...] = ("agent",)) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(subject, roles)}"}

    @asynccontextmanager
    async def stream(self, headers: dict[str, str] | None = None, **params: Any) -> AsyncIterator[Feed]:
        async with self.http.stream("GET", "/v1/stream", params=params, headers=headers or self.auth()) as response:
            # The answer's headers are out: anything committed from now on is in this stream.
            yield Feed(response)

    async def ticket(self, message_id: str, queue: str = "service-desk", customer_id: str = "c-9") -> tuple[str, str]:
        """Open and route a ticket as intake and routing would (not through this process); (number, id)."""
        data = IncidentIdentifiedData(
            channel=Channel.PHONE,
            channel_message_id=message_id,
            received_at=datetime.now(UTC),
            subject=f"Call {message_id}",
            customer=CustomerProfile(identified=True, identified_by="phone", customer_id=customer_id),
        )
        incident = new_envelope(IncidentIdentified, data, correlation_id=f"call-{message_id}")
        await open_tickets(self.db, lambda: None)([Delivery(incident, "t", 0, 0, None)])
        ticket_id = ticket_id_for(data)
        route = RouteTicketData(
            priority=3, priority_rule="r", priority_reason="x", queue=queue, queue_rule="r", queue_reason="x"
        )
        command = new_envelope(RouteTicket, route, ticket_id=ticket_id, correlation_id=incident.correlation_id)
        await apply_commands(self.db, lambda: None)([Delivery(command, "t", 0, 0, None)])
        response = await self.http.get(f"/v1/tickets/{ticket_id}", headers=self.auth())
        return response.json()["number"], str(ticket_id)

    async def claim(self, number: str, agent: str = "alice") -> None:
        response = await self.http.post(f"/v1/tickets/{number}/claim", headers=self.auth(agent))
        assert response.status_code == 200, response.text

    async def move(self, number: str, queue: str) -> None:
        body = {"queue": queue, "reason": "belongs there"}
        response = await self.http.post(f"/v1/tickets/{number}/queue", json=body, headers=self.auth("lena", ("lead",)))
        assert response.status_code == 200, response.text

    async def stored(self, position: int) -> Any:
        async with self.db.reader.connect() as conn:
            return (await event_store.read_rows_after(conn, position - 1, 1))[0]


@pytest.fixture
async def desk(database_url: str, kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Desk]:
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10
    )
    settings = Settings(database_url=database_url)
    service = build(common, settings, AUTH)
    async with service._lifespan(service.app), serving(service.app) as url:
        db = TicketDatabase(database_url)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=WAIT_S) as http:
                yield Desk(http, db, settings)
        finally:
            await db.close()


def envelope(event: dict[str, str]) -> dict[str, Any]:
    return json.loads(event["data"])


async def test_a_tickets_stream_sends_its_events_as_they_happen_and_no_others(desk: Desk) -> None:
    watched, watched_id = await desk.ticket("call-1")
    other, _ = await desk.ticket("call-2")
    async with desk.stream(ticket=watched) as feed:
        await desk.claim(other)
        await desk.claim(watched)
        claimed = await feed.next()
        assert (claimed["event"], envelope(claimed)["ticket_id"]) == ("ticket.claimed", watched_id)
        # id is the event's position in the log; data is the envelope exactly as the relay publishes it
        stored = await desk.stored(int(claimed["id"]))
        assert claimed["data"].encode() == message_value(stored)
        assert (stored.type, str(stored.ticket_id)) == ("ticket.claimed", watched_id)


async def test_a_queues_stream_shows_a_ticket_routed_into_it_and_one_seen_leaving(desk: Desk) -> None:
    arriving, arriving_id = await desk.ticket("call-1", queue="service-desk")
    leaving, leaving_id = await desk.ticket("call-2", queue="network")
    elsewhere, _ = await desk.ticket("call-3", queue="hardware")
    async with desk.stream(queue="network") as feed:
        await desk.claim(elsewhere)  # never in network: not sent
        await desk.move(arriving, "network")
        await desk.move(leaving, "hardware")
        await desk.claim(leaving)  # in hardware now: not sent
        await desk.claim(arriving)
        seen = [(e["event"], envelope(e)["ticket_id"], envelope(e)["data"].get("queue")) for e in await feed.events(3)]
    assert seen == [
        ("ticket.routed", arriving_id, "network"),
        ("ticket.routed", leaving_id, "hardware"),  # the event that took it out of the queue
        ("ticket.claimed", arriving_id, None),
    ]
    # From the start of the log, a queue's stream tells the story of each ticket in it now.
    async with desk.stream(queue="network", last_event_id="0") as feed:
        replayed = [(e["event"], envelope(e)["ticket_id"]) for e in await feed.events(6)]
    assert replayed == [
        ("ticket.opened", arriving_id),
        ("ticket.prioritised", arriving_id),
        ("ticket.routed", arriving_id),
        ("ticket.routed", arriving_id),
        ("ticket.routed", leaving_id),
        ("ticket.claimed", arriving_id),
    ]


async def test_last_event_id_resumes_right_after_that_position(desk: Desk) -> None:
    await desk.ticket("call-1")
    number, _ = await desk.ticket("call-2")  # positions 1 to 6
    resumed = {**desk.auth(), "Last-Event-ID": "2"}
    async with desk.stream(headers=resumed, last_event_id="5") as feed:  # the header wins: EventSource sends it
        assert [e["id"] for e in await feed.events(4)] == ["3", "4", "5", "6"]
        await desk.claim(number)
        live = await feed.next()
        assert (live["id"], live["event"]) == ("7", "ticket.claimed")
    async with desk.stream(last_event_id="5") as feed:
        assert [e["id"] for e in await feed.events(2)] == ["6", "7"]
    refused = await desk.http.get("/v1/stream", headers={**desk.auth(), "Last-Event-ID": "seven"})
    assert refused.status_code == 400 and refused.json()["type"] == "urn:helpdesk:problem:invalid-last-event-id"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_without_a_valid_token_the_stream_is_refused(desk: Desk) -> None:
    missing = await desk.http.get("/v1/stream")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    forged = mint("mallory", ("agent",), auth=AuthSettings(jwt_secret="another-secret-0123456789abcdef0123"))
    bad = await desk.http.get("/v1/stream", headers={"Authorization": f"Bearer {forged}"})
    assert bad.status_code == 401 and bad.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_stream_ends_when_its_token_expires_and_resumes_with_a_fresh_one(desk: Desk) -> None:
    number, _ = await desk.ticket("call-expiring")
    short_lived = {"Authorization": f"Bearer {mint('alice', ('agent',), ttl_s=2)}"}
    async with desk.stream(headers=short_lived, ticket=number, last_event_id="0") as feed:
        seen = [await feed.next() for _ in range(3)]  # opened, prioritised, routed
        expired = await feed.next()
        assert expired["event"] == "token-expired" and "id" not in expired
        assert await feed.ended()
    await desk.claim(number)
    async with desk.stream(ticket=number, last_event_id=seen[-1]["id"]) as feed:
        assert (await feed.next())["event"] == "ticket.claimed"


async def test_a_customer_streams_only_the_public_events_of_their_own_tickets(desk: Desk) -> None:
    own, own_id = await desk.ticket("call-1", customer_id="c-1")
    others, _ = await desk.ticket("call-2", customer_id="c-2")
    customer = desk.auth("c-1", ("customer",))
    assert (await desk.http.get("/v1/stream", params={"ticket": others}, headers=customer)).status_code == 404
    assert (await desk.http.get("/v1/stream", params={"queue": "service-desk"}, headers=customer)).status_code == 403
    async with desk.stream(headers=customer, last_event_id="0") as feed:
        opened = await feed.next()  # not its prioritising or routing: those are the desk's own business
        await desk.claim(others)
        await desk.claim(own)  # an assignment: not shown to customers
        response = await desk.http.post(
            f"/v1/tickets/{own}/resolve", json={"resolution": "Reset the token"}, headers=desk.auth()
        )
        assert response.status_code == 200, response.text
        resolved = await feed.next()
    assert [(e["event"], envelope(e)["ticket_id"]) for e in (opened, resolved)] == [
        ("ticket.opened", own_id),
        ("ticket.resolved", own_id),
    ]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_on_postgresql_an_event_that_commits_late_is_not_skipped(desk: Desk) -> None:
    async with desk.stream() as feed:
        async with desk.db.writer.connect() as held:
            transaction = await held.begin()
            held_id = await _open(held, "held")  # appended, not yet committed
            later = asyncio.create_task(_open_committed(desk.db, "later"))
            await asyncio.sleep(0.3)  # room for the stream to poll meanwhile (it must not move past the held one)
            assert not later.done(), "a second appender waits for the first to commit"
            await transaction.commit()
        later_id = await later
        events = [(int(e["id"]), envelope(e)["ticket_id"]) for e in await feed.events(2)]
    assert [ticket for _, ticket in events] == [str(held_id), str(later_id)]
    assert events[1][0] > events[0][0]


async def test_open_streams_end_when_the_service_stops(
    sqlite_database: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    common = CommonSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix)
    settings = Settings(database_url=sqlite_database)
    service = build(common, settings, AUTH)
    lifespan = service._lifespan(service.app)
    await lifespan.__aenter__()
    async with serving(service.app) as url, httpx.AsyncClient(base_url=url, timeout=WAIT_S) as http:
        token = {"Authorization": f"Bearer {mint('alice')}"}
        async with http.stream("GET", "/v1/stream", headers=token) as response:
            feed = Feed(response)
            stopping = asyncio.create_task(lifespan.__aexit__(None, None, None))  # the shut-down hooks run
            assert await feed.ended()
            await stopping


async def test_a_quiet_stream_sends_keep_alives(sqlite_database: str) -> None:
    settings = Settings(database_url=sqlite_database)
    db = TicketDatabase(sqlite_database)
    await db.migrate()
    tail = LogTail(db, poll_interval_s=0.05)
    app = FastAPI()
    app.include_router(stream_router(db, tail, keep_alive_s=0.1))
    app.add_middleware(RequestGuard, guard=Guard(64 * 1024, Authenticator(TokenVerifier(AUTH))))
    problems.install(app)
    try:
        async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=WAIT_S) as http:
            token = {"Authorization": f"Bearer {mint('alice')}"}
            async with http.stream("GET", "/v1/stream", headers=token) as response:
                await Feed(response).comment("keep-alive")
    finally:
        await tail.close()
        await db.close()


async def _open(conn: Any, message_id: str) -> uuid.UUID:
    data = IncidentIdentifiedData(
        channel=Channel.WEB,
        channel_message_id=message_id,
        received_at=datetime.now(UTC),
        subject="Payroll export fails",
        customer=CustomerProfile(identified=False, email="payroll@example.com"),
    )
    cause = new_envelope(IncidentIdentified, data, correlation_id=f"contact-{message_id}")
    ticket_id = ticket_id_for(data)
    number = (await event_store.allocate_numbers(conn, [ticket_id]))[ticket_id]
    events = repository.recorded(ticket_id, [open_ticket(number, data)], at=datetime.now(UTC), cause=cause)
    await repository.save(conn, [Change.of(None, events)])
    return ticket_id


async def _open_committed(db: TicketDatabase, message_id: str) -> uuid.UUID:
    async with db.writer.begin() as conn:
        return await _open(conn, message_id)
