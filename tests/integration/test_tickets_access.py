"""Who may do what: every endpoint of the ticket API called by every kind of caller, over real HTTP.

The matrix holds one row per endpoint; the test takes the endpoints from the
running app, so an endpoint added without a row fails it. Then the
customer's and the integration's view in more detail.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.routing import APIRoute

from runtime.service import Service
from runtime.settings import CommonSettings
from services.tickets.adapters.database import TicketDatabase
from services.tickets.bootstrap import build
from tests.integration.test_tickets_api import SECRET, Desk, desk_settings, problem
from tests.support.tokens import AUTH

OWN, OTHER = "c-own", "c-other"
CALLERS = (
    "no credential",
    "bad token",
    "expired token",
    "bad api key",
    "agent",
    "lead",
    "customer, own ticket",
    "customer, other's ticket",
    "integration",
)
REFUSED = dict.fromkeys(CALLERS[:4], 401)


@dataclass(frozen=True)
class Row:
    """One endpoint: the state its ticket must be in, the request, and the status each caller gets."""

    state: str  # open | claimed (by alice) | resolved (by alice)
    expect: dict[str, int]
    body: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)


def row(state: str, agent: int, lead: int, own: int, other: int, integration: int, **request: Any) -> Row:
    by_kind = {
        "agent": agent,
        "lead": lead,
        "customer, own ticket": own,
        "customer, other's ticket": other,
        "integration": integration,
    }
    return Row(state, {**REFUSED, **by_kind}, **request)


# 409 where a ticket rule answers (an integration owns no ticket, so it resolves, releases... none),
# 204 where take-next finds nobody waiting, None where the answer is a stream that stays open.
MATRIX: dict[str, Row] = {
    "GET /v1/tickets": row("open", 200, 200, 200, 200, 200),
    "GET /v1/tickets/{ref}": row("open", 200, 200, 200, 404, 200),
    "GET /v1/tickets/{ref}/deadlines": row("open", 200, 200, 403, 403, 200),
    "GET /v1/queues": row("open", 200, 200, 403, 403, 200),
    "GET /v1/queues/{queue}/tickets": row("open", 200, 200, 403, 403, 200),
    "POST /v1/queues/{queue}/take-next": row("open", 200, 200, 403, 403, 403),
    "POST /v1/tickets/{ref}/claim": row("open", 200, 200, 403, 403, 403),
    "POST /v1/tickets/{ref}/release": row("claimed", 200, 200, 403, 403, 409),
    "POST /v1/tickets/{ref}/notes": row("open", 200, 200, 200, 404, 200, body={"text": "Any news?"}),
    "POST /v1/tickets/{ref}/status": row("claimed", 200, 200, 403, 403, 409, body={"status": "waiting_on_customer"}),
    "POST /v1/tickets/{ref}/assignment": row("claimed", 403, 200, 403, 403, 403, body={"agent_id": "bob"}),
    "POST /v1/tickets/{ref}/priority": row("open", 200, 200, 403, 403, 200, body={"priority": 1, "reason": "CEO"}),
    "POST /v1/tickets/{ref}/queue": row("open", 200, 200, 403, 403, 200, body={"queue": "network", "reason": "VPN"}),
    "POST /v1/tickets/{ref}/resolve": row("claimed", 200, 200, 403, 403, 409, body={"resolution": "Reset it"}),
    "POST /v1/tickets/{ref}/close": row("resolved", 200, 200, 403, 403, 409),
    "POST /v1/tickets/{ref}/reopen": row("resolved", 200, 200, 403, 403, 200, body={"reason": "Back again"}),
    "POST /v1/tickets/{ref}/merge": row("open", 200, 200, 403, 403, 200, body={"into": "{target}", "reason": "dup"}),
    "POST /v1/tickets/{ref}/links": row("open", 200, 200, 403, 403, 200, body={"target": "{target}", "kind": "causes"}),
    "DELETE /v1/tickets/{ref}/links/{target}": row("open", 200, 200, 403, 403, 200, params={"kind": "causes"}),
    "GET /v1/stream": row("open", 200, 200, 200, 404, 200, params={"ticket": "{ref}"}),
}


def endpoints(app: FastAPI) -> Iterator[str]:
    """Every ``METHOD /path`` the app serves, through the routers included in it."""

    def walk(routes: list[Any], prefix: str) -> Iterator[str]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield from (f"{method} {prefix}{route.path}" for method in sorted(route.methods))
            elif hasattr(route, "original_router"):  # FastAPI's included router
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)

    yield from walk(app.routes, "")


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a free loopback port (real HTTP: the stream answers as it would)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(15):
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)  # its graceful shut-down is a few seconds; bounded all the same
        sock.close()


@pytest.fixture
async def service(sqlite_database: str, kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Service]:
    """Who may do what does not depend on the database: SQLite only."""
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10
    )
    service = build(common, desk_settings(sqlite_database), AUTH)
    async with service._lifespan(service.app):
        yield service


@pytest.fixture
async def desk(service: Service, sqlite_database: str) -> AsyncIterator[Desk]:
    """The service over real HTTP (a stream answers as it would to a client)."""
    async with serving(service.app) as url:
        db = TicketDatabase(sqlite_database)
        async with httpx.AsyncClient(base_url=url, timeout=15) as http:
            yield Desk(http, desk_settings(sqlite_database), db, service.common)
        await db.close()


def credentials(desk: Desk, caller: str) -> dict[str, str]:
    expired = jwt.encode(
        {"sub": "alice", "roles": ["agent"], "iss": "helpdesk", "aud": "helpdesk-api", "iat": int(time.time()) - 1200,
         "exp": int(time.time()) - 600},
        SECRET,
        algorithm="HS256",
    )
    return {
        "no credential": {},
        "bad token": {"Authorization": "Bearer not.a.token"},
        "expired token": {"Authorization": f"Bearer {expired}"},
        "bad api key": {"X-API-Key": "not-a-key"},
        "agent": desk.auth("alice"),
        "lead": desk.auth("lena", ("lead",)),
        "customer, own ticket": desk.customer(OWN),
        "customer, other's ticket": desk.customer(OTHER),
        "integration": desk.integration(),
    }[caller]


class Tickets:
    """Tickets of the customer ``OWN`` in the state an endpoint needs, each in a queue of its own.

    A call that is to pass gets fresh tickets (what it changes changes no other call); a call to be
    refused gets the shared ones, which must come out of the whole matrix unchanged.
    """

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.count = 0
        self.shared: dict[str, tuple[str, str, str]] = {}

    async def for_call(self, state: str, passes: bool) -> tuple[str, str, str]:
        """(ticket, its queue, another open ticket) for one call."""
        if passes:
            return (*await self.new(state), (await self.new("open"))[0])
        if state not in self.shared:
            self.shared[state] = (*await self.new(state), (await self.new("open"))[0])
        return self.shared[state]

    async def new(self, state: str) -> tuple[str, str]:
        self.count += 1
        queue = f"line-{self.count}"
        number = await self.desk.ticket(f"m-{self.count}", queue=queue, customer_id=OWN)
        alice = self.desk.auth("alice")
        if state in ("claimed", "resolved"):
            await self.desk.http.post(f"/v1/tickets/{number}/claim", headers=alice)
        if state == "resolved":
            await self.desk.http.post(f"/v1/tickets/{number}/resolve", json={"resolution": "done"}, headers=alice)
        return number, queue

    async def versions(self) -> dict[str, int]:
        numbers = [n for shared in self.shared.values() for n in (shared[0], shared[2])]
        answers = [await self.desk.http.get(f"/v1/tickets/{n}", headers=self.desk.auth()) for n in numbers]
        return {n: a.json()["version"] for n, a in zip(numbers, answers, strict=True)}


async def call(desk: Desk, endpoint: str, spec: Row, caller: str, tickets: Tickets) -> int:
    method, path = endpoint.split(" ", 1)
    passes = spec.expect[caller] in (200, 204, 409)
    ref, queue, target = await tickets.for_call(spec.state, passes)
    if passes and endpoint.startswith("DELETE /v1/tickets/{ref}/links"):
        await desk.http.post(f"/v1/tickets/{ref}/links", json={"target": target, "kind": "causes"}, headers=desk.auth())
    names = {"ref": ref, "queue": queue, "target": target}
    body = json.loads(json.dumps(spec.body).replace("{target}", target)) if spec.body else None
    params = {k: v.format(**names) for k, v in spec.params.items()}
    headers = credentials(desk, caller)
    async with desk.http.stream(method, path.format(**names), json=body, params=params, headers=headers) as response:
        return response.status_code  # a stream is left at its headers: the status is all the matrix asks


async def test_every_endpoint_answers_every_kind_of_caller_as_the_matrix_says(service: Service, desk: Desk) -> None:
    served = {e for e in endpoints(service.app) if e.split(" ", 1)[1].startswith("/v1/")}
    assert served == set(MATRIX), (
        f"endpoints without a matrix row: {sorted(served - set(MATRIX))}; rows for no endpoint: {sorted(set(MATRIX) - served)}"
    )
    tickets = Tickets(desk)
    for state in ("open", "claimed", "resolved"):
        await tickets.for_call(state, passes=False)
    before = await tickets.versions()
    got = {(e, c): await call(desk, e, spec, c, tickets) for e, spec in MATRIX.items() for c in CALLERS}
    wrong = {
        f"{endpoint} as {caller}": f"{status}, expected {MATRIX[endpoint].expect[caller]}"
        for (endpoint, caller), status in got.items()
        if status != MATRIX[endpoint].expect[caller]
    }
    assert not wrong, json.dumps(wrong, indent=1)
    assert await tickets.versions() == before  # the refused calls changed nothing


# --- the customer's and the integration's view --------------------------------------------

CUSTOMER_SEES = {"ticket.opened", "ticket.note_added", "ticket.customer_replied", "ticket.status_changed",
                 "ticket.resolved", "ticket.closed", "ticket.reopened", "ticket.merged"}  # fmt: skip


async def test_a_customer_sees_only_their_own_tickets_and_none_of_the_desks_internals(desk: Desk) -> None:
    mine = await desk.ticket("mine", customer_id=OWN)
    theirs = await desk.ticket("theirs", customer_id=OTHER)
    alice = desk.auth("alice")
    await desk.http.post(f"/v1/tickets/{mine}/claim", headers=alice)
    notes = f"/v1/tickets/{mine}/notes"
    await desk.http.post(notes, json={"text": "customer is rude", "visibility": "internal"}, headers=alice)
    await desk.http.post(notes, json={"text": "A new token is on its way", "visibility": "public"}, headers=alice)
    await desk.http.post(f"/v1/tickets/{mine}/links", json={"target": theirs, "kind": "relates_to"}, headers=alice)
    customer = desk.customer(OWN)

    listed = (await desk.http.get("/v1/tickets", headers=customer)).json()["tickets"]
    assert [(t["number"], t["assignee"], t["queue"], t["flags"]) for t in listed] == [(mine, None, None, [])]
    snooping = await desk.http.get("/v1/tickets", params={"customer": OTHER}, headers=customer)
    assert snooping.status_code == 200 and snooping.json()["tickets"] == []

    ticket = (await desk.http.get(f"/v1/tickets/{mine}", headers=customer)).json()
    assert {e["type"] for e in ticket["history"]} <= CUSTOMER_SEES
    notes_seen = [e["data"]["text"] for e in ticket["history"] if e["type"] == "ticket.note_added"]
    assert notes_seen == ["A new token is on its way"]
    assert (ticket["assignee"], ticket["queue"], ticket["links"]) == (None, None, [])
    agents_view = (await desk.http.get(f"/v1/tickets/{mine}", headers=alice)).json()
    assert ticket["version"] == agents_view["version"] and len(agents_view["history"]) > len(ticket["history"])

    not_theirs = problem(await desk.http.get(f"/v1/tickets/{theirs}", headers=customer), 404, "ticket-not-found")
    no_such = problem(await desk.http.get("/v1/tickets/HD-999999", headers=customer), 404, "ticket-not-found")
    assert not_theirs.keys() == no_such.keys()  # another customer's ticket looks like no ticket at all


async def test_a_customer_never_sees_internal_reasons_agent_ids_or_the_directorys_view_of_them(desk: Desk) -> None:
    mine = await desk.ticket(
        "mine", customer_id=OWN, name="Olga Own", vip=True, department="Dept-Of-Secrets", location="Floor-13"
    )
    theirs = await desk.ticket("theirs", customer_id=OTHER, queue="line-of-others")
    alice, lena = desk.auth("alice"), desk.auth("lena", ("agent", "lead"))
    await desk.http.post(f"/v1/tickets/{mine}/claim", headers=alice)
    await desk.http.post(f"/v1/tickets/{mine}/resolve", json={"resolution": "Replaced the token"}, headers=alice)
    await desk.http.post(f"/v1/tickets/{mine}/reopen", json={"reason": "REOPEN-REASON-INTERNAL"}, headers=lena)
    merged = await desk.http.post(
        f"/v1/tickets/{mine}/merge", json={"into": theirs, "reason": "MERGE-REASON-INTERNAL"}, headers=lena
    )
    assert merged.status_code == 200, merged.text
    internals = ("alice", "lena", "REOPEN-REASON-INTERNAL", "MERGE-REASON-INTERNAL", theirs, "Dept-Of-Secrets",
                 "Floor-13", '"vip"', "service-desk", "line-of-others")  # fmt: skip
    customer = desk.customer(OWN)

    ticket = await desk.http.get(f"/v1/tickets/{mine}", headers=customer)
    listed = await desk.http.get("/v1/tickets", headers=customer)
    async with desk.http.stream(
        "GET", "/v1/stream", params={"ticket": mine}, headers={**customer, "Last-Event-ID": "0"}
    ) as stream:
        seen = await _sse_until(stream, "ticket.merged")
    for answer in (ticket.text, listed.text, seen):
        assert not [word for word in internals if word in answer], answer
    shown = ticket.json()
    assert (shown["status"], shown["resolution"], shown["customer"]["name"]) == ("merged", None, "Olga Own")
    assert (shown["priority"], shown["level"], shown["resolved_by"], shown["merged_into"]) == (None, None, None, None)
    assert [e["type"] for e in shown["history"]] == [
        "ticket.opened",
        "ticket.resolved",
        "ticket.reopened",
        "ticket.merged",
    ]
    assert "Replaced the token" in seen and "ticket.reopened" in seen


@pytest.mark.parametrize("asked", [{"queue": "service-desk"}, {"assignee": "alice"}, {"priority": "3"}])
async def test_a_customer_may_not_filter_by_the_desks_internals(desk: Desk, asked: dict[str, str]) -> None:
    await desk.ticket("mine", customer_id=OWN)
    refused = await desk.http.get("/v1/tickets", params=asked, headers=desk.customer(OWN))
    assert f"may not filter by {next(iter(asked))}" in problem(refused, 403, "forbidden")["detail"]


async def _sse_until(stream: httpx.Response, event_type: str) -> str:
    """The raw text of a server-sent event stream up to and including the first event of ``event_type``."""
    text, found = "", False
    async with asyncio.timeout(15):
        async for line in stream.aiter_lines():
            text += line + "\n"
            if found and line == "":  # the blank line that ends the event
                return text
            found = found or line == f"event: {event_type}"
    raise AssertionError(f"the stream ended before {event_type}: {text}")


async def test_a_customers_note_is_their_reply_recorded_once_per_idempotency_key(desk: Desk) -> None:
    number = await desk.ticket("mine", customer_id=OWN)
    customer = {**desk.customer(OWN), "Idempotency-Key": "reply-1"}
    replied = await desk.http.post(f"/v1/tickets/{number}/notes", json={"text": "Still broken"}, headers=customer)
    assert replied.status_code == 200, replied.text
    reply = replied.json()["history"][-1]
    assert (reply["type"], reply["data"]["text"], reply["data"]["channel"]) == (
        "ticket.customer_replied",
        "Still broken",
        "web",
    )
    again = await desk.http.post(f"/v1/tickets/{number}/notes", json={"text": "Still broken"}, headers=customer)
    assert again.json()["version"] == replied.json()["version"]
    internal = await desk.http.post(
        f"/v1/tickets/{number}/notes", json={"text": "psst", "visibility": "internal"}, headers=desk.customer(OWN)
    )
    problem(internal, 403, "forbidden")

    alice = desk.auth("alice")
    await desk.http.post(f"/v1/tickets/{number}/claim", headers=alice)
    await desk.http.post(f"/v1/tickets/{number}/resolve", json={"resolution": "done"}, headers=alice)
    await desk.http.post(f"/v1/tickets/{number}/close", headers=alice)
    late = await desk.http.post(f"/v1/tickets/{number}/notes", json={"text": "hello?"}, headers=desk.customer(OWN))
    assert problem(late, 409, "ticket-rule")["rule"] == "ticket_closed"


async def test_an_integration_works_tickets_under_its_own_name_but_never_owns_one(desk: Desk) -> None:
    number = await desk.ticket("crm-1")
    crm = desk.integration()
    noted = await desk.http.post(f"/v1/tickets/{number}/notes", json={"text": "CRM: contract renewed"}, headers=crm)
    assert noted.json()["history"][-1]["data"]["author"] == "integration:crm"
    urgent = await desk.http.post(f"/v1/tickets/{number}/priority", json={"priority": 1, "reason": "VIP"}, headers=crm)
    assert urgent.json()["history"][-1]["data"]["by"] == "integration:crm"
    problem(await desk.http.post(f"/v1/tickets/{number}/claim", headers=crm), 403, "forbidden")
    unknown = await desk.http.get("/v1/tickets", headers=desk.integration("a-guessed-key"))
    problem(unknown, 401, "invalid-api-key")
    assert unknown.headers["www-authenticate"].startswith("Bearer")
