"""The ticket HTTP API in a running service, with real tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.commands import RouteTicket, RouteTicketData
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import (
    Channel,
    CustomerProfile,
    IncidentIdentified,
    IncidentIdentifiedData,
)
from contracts.registry import parse_message
from contracts.sla import Deadline, SlaDeadlinesChanged, SlaDeadlinesChangedData
from contracts.topics import SLA_DEADLINES, TICKET_EVENTS_TOPIC
from runtime.consumer import Delivery
from runtime.auth import AuthSettings
from runtime.settings import CommonSettings
from services.tickets.adapters import event_store
from services.tickets.adapters.database import TicketDatabase
from services.tickets.bootstrap import build
from services.tickets.config import Settings
from tests.support.tokens import AUTH, SECRET, mint
from services.tickets.handlers import apply_commands, open_tickets, ticket_id_for

INTEGRATION_KEY = "crm-integration-key-0123456789"
PROBLEM = "application/problem+json"


@dataclass
class Desk:
    """A running ticket service, an HTTP client for it, and a way to put tickets in it."""

    http: httpx.AsyncClient
    settings: Settings
    db: TicketDatabase
    common: CommonSettings

    def auth(self, agent: str = "alice", roles: tuple[str, ...] = ("agent",)) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(agent, roles)}"}

    def customer(self, customer_id: str = "c-9") -> dict[str, str]:
        return self.auth(customer_id, ("customer",))

    def integration(self, key: str = INTEGRATION_KEY) -> dict[str, str]:
        return {"X-API-Key": key}

    async def ticket(
        self,
        message_id: str,
        *,
        priority: int = 3,
        queue: str = "service-desk",
        customer_id: str = "c-9",
        **profile: Any,
    ) -> str:
        """Open and route a ticket (as intake and routing would); returns its number."""
        data = IncidentIdentifiedData(
            channel=Channel.PHONE,
            channel_message_id=message_id,
            received_at=datetime.now(UTC),
            subject=f"Call {message_id}",
            customer=CustomerProfile(
                identified=True, identified_by="phone", customer_id=customer_id, phone="+4930123456", **profile
            ),
        )
        incident = new_envelope(IncidentIdentified, data, correlation_id=f"call-{message_id}")
        await open_tickets(self.db, lambda: None)([Delivery(incident, "t", 0, 0, None)])
        ticket_id = ticket_id_for(data)
        route = RouteTicketData(
            priority=priority,  # type: ignore[arg-type]
            priority_rule="r",
            priority_reason="x",
            queue=queue,
            queue_rule="r",
            queue_reason="x",
        )
        command = new_envelope(RouteTicket, route, ticket_id=ticket_id, correlation_id=incident.correlation_id)
        await apply_commands(self.db, lambda: None)([Delivery(command, "t", 0, 0, None)])
        response = await self.http.get(f"/v1/tickets/{ticket_id}", headers=self.auth())
        return response.json()["number"]


def desk_settings(database_url: str, **changes: Any) -> Settings:
    keys = {"crm": hashlib.sha256(INTEGRATION_KEY.encode()).hexdigest()}
    return Settings(database_url=database_url, api_keys=json.dumps(keys), **changes)


@pytest.fixture
async def desk(database_url: str, kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Desk]:
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10
    )
    settings = desk_settings(database_url)
    service = build(common, settings, AUTH)
    async with service._lifespan(service.app):
        db = TicketDatabase(database_url)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t") as http:
            yield Desk(http, settings, db, common)
        await db.close()


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"urn:helpdesk:problem:{slug}" and body["status"] == status
    assert body["title"] and body["detail"]
    return body


async def test_an_agent_claims_and_resolves_a_ticket_and_the_relay_publishes_it(desk: Desk) -> None:
    number = await desk.ticket("call-1")
    got = await desk.http.get(f"/v1/tickets/{number}", headers=desk.auth())
    assert got.status_code == 200 and got.headers["etag"] == '"3"'
    ticket = got.json()
    assert (ticket["number"], ticket["status"], ticket["priority"], ticket["queue"]) == (
        number,
        "open",
        3,
        "service-desk",
    )
    assert ticket["customer"]["customer_id"] == "c-9"
    assert [(h["type"], h["version"]) for h in ticket["history"]] == [
        ("ticket.opened", 1),
        ("ticket.prioritised", 2),
        ("ticket.routed", 3),
    ]

    claimed = await desk.http.post(f"/v1/tickets/{number}/claim", headers={**desk.auth("alice"), "If-Match": '"3"'})
    assert claimed.status_code == 200, claimed.text
    assert claimed.headers["etag"] == '"4"'
    assert (claimed.json()["status"], claimed.json()["assignee"]) == ("in_progress", "alice")
    again = await desk.http.post(f"/v1/tickets/{number}/claim", headers=desk.auth("alice"))
    assert again.status_code == 200 and again.headers["etag"] == '"4"'  # claiming one's own ticket changes nothing

    resolved = await desk.http.post(
        f"/v1/tickets/{ticket['ticket_id']}/resolve",
        json={"resolution": "Reset the VPN token"},
        headers={**desk.auth("alice"), "If-Match": '"4"'},
    )
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert (body["status"], body["resolution"], body["resolved_by"], body["version"]) == (
        "resolved",
        "Reset the VPN token",
        "alice",
        5,
    )
    assert body["history"][3]["data"]["agent_id"] == "alice"

    records = await _read_events(desk.common, until_type="ticket.resolved")
    relayed = [m for m in records if m.ticket_id == uuid.UUID(ticket["ticket_id"])]
    assert [m.type for m in relayed][-2:] == ["ticket.claimed", "ticket.resolved"]
    assert relayed[-1].correlation_id == "call-call-1"  # an agent's change stays on the contact's trail


async def test_requests_without_a_valid_token_get_401_with_a_challenge(desk: Desk) -> None:
    number = await desk.ticket("call-1")
    missing = problem(await desk.http.get(f"/v1/tickets/{number}"), 401, "unauthenticated")
    assert missing["detail"]
    now = int(time.time())
    expired = jwt.encode(
        {"sub": "alice", "roles": ["agent"], "iss": "helpdesk", "aud": "helpdesk-api", "iat": now - 1200, "exp": now - 600},
        SECRET,
        algorithm="HS256",
    )
    forged = mint("alice", auth=AuthSettings(jwt_secret="another-secret-of-enough-length-0123456789"))
    for token in (expired, forged, "garbage"):
        response = await desk.http.post(f"/v1/tickets/{number}/claim", headers={"Authorization": f"Bearer {token}"})
        problem(response, 401, "invalid-token")
        assert response.headers["www-authenticate"].startswith('Bearer realm="helpdesk", error="invalid_token"')
    unchallenged = await desk.http.get("/v1/tickets", headers={"Authorization": "Basic YWxpY2U6cHc="})
    assert problem(unchallenged, 401, "unauthenticated") and unchallenged.headers["www-authenticate"]
    no_role = await desk.http.get("/v1/tickets", headers=desk.auth("eve", roles=("visitor",)))
    problem(no_role, 403, "forbidden")
    still_open = await desk.http.get(f"/v1/tickets/{number}", headers=desk.auth())
    assert still_open.json()["assignee"] is None


async def test_a_stale_if_match_is_refused_with_409_naming_the_current_version_and_changes_nothing(desk: Desk) -> None:
    number = await desk.ticket("call-1")
    response = await desk.http.post(f"/v1/tickets/{number}/claim", headers={**desk.auth(), "If-Match": '"2"'})
    body = problem(response, 409, "stale-version")
    assert body["current_version"] == 3 and response.headers["etag"] == '"3"'
    bad = await desk.http.post(f"/v1/tickets/{number}/claim", headers={**desk.auth(), "If-Match": "yesterday"})
    problem(bad, 400, "invalid-if-match")
    ticket = (await desk.http.get(f"/v1/tickets/{number}", headers=desk.auth())).json()
    assert (ticket["version"], ticket["assignee"]) == (3, None)


async def test_ticket_rules_answer_409_or_422_naming_the_rule(desk: Desk) -> None:
    number = await desk.ticket("call-1")
    assert (await desk.http.post(f"/v1/tickets/{number}/claim", headers=desk.auth("alice"))).status_code == 200
    by_bob = await desk.http.post(
        f"/v1/tickets/{number}/resolve", json={"resolution": "done"}, headers=desk.auth("bob")
    )
    assert problem(by_bob, 409, "ticket-rule")["rule"] == "only_owner_can_resolve"
    bob_claims = await desk.http.post(f"/v1/tickets/{number}/claim", headers=desk.auth("bob"))
    assert problem(bob_claims, 409, "ticket-rule")["rule"] == "claimed_by_another_agent"
    blank = await desk.http.post(f"/v1/tickets/{number}/resolve", json={"resolution": "  "}, headers=desk.auth())
    assert problem(blank, 422, "ticket-rule")["rule"] == "resolution_required"
    no_body = await desk.http.post(f"/v1/tickets/{number}/resolve", json={}, headers=desk.auth())
    assert problem(no_body, 422, "invalid-request")["errors"][0]["where"] == "body.resolution"
    ticket = (await desk.http.get(f"/v1/tickets/{number}", headers=desk.auth())).json()
    assert (ticket["version"], ticket["status"]) == (4, "in_progress")


async def test_an_unknown_ticket_is_a_404_problem(desk: Desk) -> None:
    for ref in ("HD-424242", str(uuid.uuid4()), "no-such-thing"):
        problem(await desk.http.get(f"/v1/tickets/{ref}", headers=desk.auth()), 404, "ticket-not-found")
    claim = await desk.http.post("/v1/tickets/HD-424242/claim", headers=desk.auth())
    problem(claim, 404, "ticket-not-found")


async def test_a_queue_lists_its_unclaimed_tickets_most_urgent_then_oldest_first(desk: Desk) -> None:
    first_p3 = await desk.ticket("a", priority=3)
    second_p1 = await desk.ticket("b", priority=1)
    third_p3 = await desk.ticket("c", priority=3)
    fourth_p1 = await desk.ticket("d", priority=1)
    claimed = await desk.ticket("e", priority=1)
    elsewhere = await desk.ticket("f", priority=1, queue="network")
    await desk.http.post(f"/v1/tickets/{claimed}/claim", headers=desk.auth())

    line = await desk.http.get("/v1/queues/service-desk/tickets", headers=desk.auth())
    assert line.status_code == 200
    assert [t["number"] for t in line.json()["tickets"]] == [second_p1, fourth_p1, first_p3, third_p3]

    newest = await desk.http.get("/v1/tickets", params={"limit": 3}, headers=desk.auth())
    assert [t["number"] for t in newest.json()["tickets"]] == [elsewhere, claimed, fourth_p1]
    in_progress = await desk.http.get("/v1/tickets", params={"status": "in_progress"}, headers=desk.auth())
    assert [t["number"] for t in in_progress.json()["tickets"]] == [claimed]
    network = await desk.http.get("/v1/tickets", params={"queue": "network"}, headers=desk.auth())
    assert [t["number"] for t in network.json()["tickets"]] == [elsewhere]
    invalid = await desk.http.get("/v1/tickets", params={"status": "lost", "limit": 0}, headers=desk.auth())
    assert {e["where"] for e in problem(invalid, 422, "invalid-request")["errors"]} == {"query.status", "query.limit"}


async def test_the_owner_works_a_ticket_through_notes_status_priority_queue_release(desk: Desk) -> None:
    number = await desk.ticket("call-1", priority=3)
    alice = desk.auth("alice")
    await desk.http.post(f"/v1/tickets/{number}/claim", headers=alice)
    note = await desk.http.post(
        f"/v1/tickets/{number}/notes", json={"text": "Called back", "visibility": "public"}, headers=desk.auth("bob")
    )
    assert note.status_code == 200 and note.headers["etag"] == '"5"'
    waiting = await desk.http.post(
        f"/v1/tickets/{number}/status", json={"status": "waiting_on_customer"}, headers={**alice, "If-Match": '"5"'}
    )
    assert waiting.json()["status"] == "waiting_on_customer"
    urgent = await desk.http.post(
        f"/v1/tickets/{number}/priority", json={"priority": 1, "reason": "CEO affected"}, headers=alice
    )
    assert urgent.json()["priority"] == 1
    moved = await desk.http.post(
        f"/v1/tickets/{number}/queue", json={"queue": "network", "reason": "it is the VPN"}, headers=alice
    )
    assert moved.json()["queue"] == "network"
    released = await desk.http.post(f"/v1/tickets/{number}/release", headers=alice)
    ticket = released.json()
    assert (ticket["status"], ticket["assignee"], ticket["version"]) == ("open", None, 9)
    history = [(e["type"], e["data"]) for e in ticket["history"][3:]]
    assert [t for t, _ in history] == [
        "ticket.claimed",
        "ticket.note_added",
        "ticket.status_changed",
        "ticket.prioritised",
        "ticket.routed",
        "ticket.released",
    ]
    assert (history[1][1]["author"], history[1][1]["visibility"]) == ("bob", "public")
    assert (history[3][1]["rule"], history[3][1]["by"], history[3][1]["reason"]) == ("manual", "alice", "CEO affected")
    assert history[4][1]["rule"] == "manual"


async def test_workflow_rules_answer_409_or_422_naming_the_rule(desk: Desk) -> None:
    number = await desk.ticket("call-1")
    await desk.http.post(f"/v1/tickets/{number}/claim", headers=desk.auth("alice"))
    by_bob = await desk.http.post(f"/v1/tickets/{number}/release", headers=desk.auth("bob"))
    assert problem(by_bob, 409, "ticket-rule")["rule"] == "only_owner_or_lead"
    no_reason = await desk.http.post(
        f"/v1/tickets/{number}/priority", json={"priority": 2, "reason": " "}, headers=desk.auth()
    )
    assert problem(no_reason, 422, "ticket-rule")["rule"] == "reason_required"
    not_resolved = await desk.http.post(f"/v1/tickets/{number}/close", headers=desk.auth("lena", ("lead",)))
    assert problem(not_resolved, 409, "ticket-rule")["rule"] == "only_resolved_can_close"
    stale = await desk.http.post(f"/v1/tickets/{number}/release", headers={**desk.auth(), "If-Match": '"3"'})
    assert problem(stale, 409, "stale-version")["current_version"] == 4
    bad_status = await desk.http.post(f"/v1/tickets/{number}/status", json={"status": "closed"}, headers=desk.auth())
    problem(bad_status, 422, "invalid-request")
    lead_releases = await desk.http.post(f"/v1/tickets/{number}/release", headers=desk.auth("lena", ("lead",)))
    assert lead_releases.json()["assignee"] is None


async def test_a_resolved_ticket_closes_and_reopens_within_the_window(desk: Desk) -> None:
    number = await desk.ticket("call-1")
    alice = desk.auth("alice")
    await desk.http.post(f"/v1/tickets/{number}/claim", headers=alice)
    await desk.http.post(f"/v1/tickets/{number}/resolve", json={"resolution": "Reset the token"}, headers=alice)
    closed = await desk.http.post(f"/v1/tickets/{number}/close", headers=alice)
    assert closed.json()["status"] == "closed"
    again = await desk.http.post(f"/v1/tickets/{number}/close", headers=alice)
    assert again.json()["version"] == closed.json()["version"]
    no_reason = await desk.http.post(f"/v1/tickets/{number}/reopen", json={"reason": ""}, headers=desk.auth("bob"))
    assert problem(no_reason, 422, "ticket-rule")["rule"] == "reason_required"
    reopened = await desk.http.post(
        f"/v1/tickets/{number}/reopen", json={"reason": "drops again"}, headers=desk.auth("bob")
    )
    ticket = reopened.json()
    assert (ticket["status"], ticket["assignee"], ticket["resolution"]) == ("in_progress", "alice", None)
    assert ticket["history"][-1]["data"]["reopened_by"] == "bob"


async def test_a_ticket_closed_longer_than_the_window_does_not_reopen(
    database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10
    )
    settings = Settings(database_url=database_url, reopen_window_s=0)
    service = build(common, settings, AUTH)
    transport = httpx.ASGITransport(app=service.app)
    async with service._lifespan(service.app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        desk = Desk(http, settings, TicketDatabase(database_url), common)
        number = await desk.ticket("call-1")
        await http.post(f"/v1/tickets/{number}/claim", headers=desk.auth())
        await http.post(f"/v1/tickets/{number}/resolve", json={"resolution": "done"}, headers=desk.auth())
        late = await http.post(f"/v1/tickets/{number}/reopen", json={"reason": "no"}, headers=desk.auth())
        assert problem(late, 409, "ticket-rule")["rule"] == "reopen_window_passed"
        await desk.db.close()


async def open_routed_tickets(desk: Desk, count: int, queue: str) -> None:
    """``count`` tickets waiting in ``queue``, opened and routed in one batch each (as the consumers would)."""
    incidents = [
        new_envelope(
            IncidentIdentified,
            IncidentIdentifiedData(
                channel=Channel.PHONE,
                channel_message_id=f"bulk-{queue}-{n}",
                received_at=datetime.now(UTC),
                subject=f"Call {n}",
                customer=CustomerProfile(identified=True, identified_by="phone", customer_id="c-9"),
            ),
        )
        for n in range(count)
    ]
    await open_tickets(desk.db, lambda: None)([Delivery(m, "t", 0, n, None) for n, m in enumerate(incidents)])
    route = RouteTicketData(
        priority=3, priority_rule="r", priority_reason="x", queue=queue, queue_rule="r", queue_reason="x"
    )
    commands = [new_envelope(RouteTicket, route, ticket_id=ticket_id_for(m.data)) for m in incidents]
    await apply_commands(desk.db, lambda: None)([Delivery(c, "t", 0, n, None) for n, c in enumerate(commands)])


async def test_queues_show_how_many_wait_and_since_when(desk: Desk) -> None:
    first = await desk.ticket("a", queue="network")
    await desk.ticket("b", queue="network")
    claimed = await desk.ticket("c", queue="printers")
    await desk.http.post(f"/v1/tickets/{claimed}/claim", headers=desk.auth())
    response = await desk.http.get("/v1/queues", headers=desk.auth())
    assert response.status_code == 200
    queues = {q["queue"]: q for q in response.json()["queues"]}
    assert (queues["network"]["depth"], queues["printers"]["depth"]) == (2, 0)
    oldest = (await desk.http.get(f"/v1/tickets/{first}", headers=desk.auth())).json()["opened_at"]
    assert datetime.fromisoformat(queues["network"]["oldest_opened_at"]) == datetime.fromisoformat(oldest)
    assert queues["network"]["oldest_age_s"] >= 0
    assert queues["printers"]["oldest_opened_at"] is None and queues["printers"]["oldest_age_s"] is None


async def test_take_next_claims_the_head_of_the_line_and_says_204_when_it_is_empty(desk: Desk) -> None:
    later_p3 = await desk.ticket("a", priority=3)
    urgent = await desk.ticket("b", priority=1)
    taken = await desk.http.post("/v1/queues/service-desk/take-next", headers=desk.auth("alice"))
    assert (taken.json()["number"], taken.json()["assignee"], taken.json()["status"]) == (
        urgent,
        "alice",
        "in_progress",
    )
    assert taken.headers["etag"] == '"4"'
    second = await desk.http.post("/v1/queues/service-desk/take-next", headers=desk.auth("bob"))
    assert second.json()["number"] == later_p3
    empty = await desk.http.post("/v1/queues/service-desk/take-next", headers=desk.auth("carol"))
    assert empty.status_code == 204 and not empty.content


async def test_fifty_agents_taking_next_at_once_each_get_a_different_ticket(desk: Desk) -> None:
    await open_routed_tickets(desk, 50, "rush")
    responses = await asyncio.gather(
        *(desk.http.post("/v1/queues/rush/take-next", headers=desk.auth(f"agent-{n}")) for n in range(50))
    )
    assert [r.status_code for r in responses] == [200] * 50, [r.text for r in responses if r.status_code != 200]
    taken = {r.json()["number"]: r.json()["assignee"] for r in responses}
    assert len(taken) == 50 and len(set(taken.values())) == 50
    async with desk.db.reader.connect() as conn:
        history = await event_store.read_after(conn, 0, 100_000)
    claims = [e.message for e in history if e.message.type == "ticket.claimed"]
    assert len(claims) == 50 and len({c.ticket_id for c in claims}) == 50  # no ticket claimed twice


async def test_a_tickets_deadlines_come_from_the_sla_topic(desk: Desk) -> None:
    number = await desk.ticket("call-1")
    none_yet = await desk.http.get(f"/v1/tickets/{number}/deadlines", headers=desk.auth())
    assert none_yet.status_code == 200 and (none_yet.json()["deadlines"], none_yet.json()["policy"]) == ([], None)
    ticket_id = uuid.UUID(none_yet.json()["ticket_id"])
    due = datetime.now(UTC) + timedelta(hours=4)
    data = SlaDeadlinesChangedData(
        number=number,
        policy="standard",
        calendar="office",
        deadlines=[Deadline(kind="resolution", due_at=due, state="running")],
    )
    message = new_envelope(SlaDeadlinesChanged, data, ticket_id=ticket_id)
    producer = AIOKafkaProducer(bootstrap_servers=desk.common.kafka_bootstrap_servers)
    await producer.start()
    try:
        topic = SLA_DEADLINES.qualified(desk.common.kafka_topic_prefix)
        await producer.send_and_wait(topic, message.model_dump_json().encode(), key=str(ticket_id).encode())
    finally:
        await producer.stop()
    deadline = time.monotonic() + 20
    while True:
        body = (await desk.http.get(f"/v1/tickets/{number}/deadlines", headers=desk.auth())).json()
        if body["deadlines"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert body["deadlines"], f"the deadlines published on {topic} never reached the ticket API within 20 s"
    assert (body["policy"], body["deadlines"][0]["kind"], body["deadlines"][0]["state"]) == (
        "standard",
        "resolution",
        "running",
    )
    assert datetime.fromisoformat(body["deadlines"][0]["due_at"]) == due
    problem(await desk.http.get("/v1/tickets/HD-999999/deadlines", headers=desk.auth()), 404, "ticket-not-found")


async def test_lists_filter_by_priority_assignee_customer_and_time_and_page_with_a_cursor(desk: Desk) -> None:
    start = datetime.now(UTC)
    urgent = await desk.ticket("a", priority=1)
    await desk.ticket("b", priority=3)
    mine = await desk.ticket("c", priority=3)
    await desk.http.post(f"/v1/tickets/{mine}/claim", headers=desk.auth("alice"))
    auth = desk.auth()

    async def numbers(**params: Any) -> list[str]:
        response = await desk.http.get("/v1/tickets", params=params, headers=auth)
        assert response.status_code == 200, response.text
        return [t["number"] for t in response.json()["tickets"]]

    assert await numbers(priority=1) == [urgent]
    assert await numbers(assignee="alice") == [mine]
    assert len(await numbers(customer="c-9")) == 3 and await numbers(customer="c-0") == []
    assert await numbers(opened_before=start.isoformat()) == []
    assert len(await numbers(opened_after=start.isoformat(), channel="phone")) == 3
    later = (await desk.http.get(f"/v1/tickets/{mine}", headers=auth)).json()["updated_at"]
    assert await numbers(updated_after=later) == [mine]

    pages: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await desk.http.get("/v1/tickets", params=params, headers=auth)).json()
        pages += [t["number"] for t in body["tickets"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == await numbers(limit=10) and len(pages) == 3
    problem(await desk.http.get("/v1/tickets", params={"cursor": "nonsense"}, headers=auth), 400, "invalid-cursor")


async def test_a_ticket_as_it_stood_at_a_moment_is_its_events_up_to_then(desk: Desk) -> None:
    number = await desk.ticket("call-1")
    routed = (await desk.http.get(f"/v1/tickets/{number}", headers=desk.auth())).json()
    await desk.http.post(f"/v1/tickets/{number}/claim", headers=desk.auth("alice"))
    opened_at = routed["history"][0]["occurred_at"]
    then = (
        await desk.http.get(f"/v1/tickets/{number}", params={"as_of": routed["updated_at"]}, headers=desk.auth())
    ).json()
    assert (then["version"], then["status"], then["assignee"], len(then["history"])) == (3, "open", None, 3)
    now = (await desk.http.get(f"/v1/tickets/{number}", headers=desk.auth())).json()
    assert (now["version"], now["assignee"]) == (4, "alice")
    before = datetime.fromisoformat(opened_at) - timedelta(seconds=1)
    early = await desk.http.get(f"/v1/tickets/{number}", params={"as_of": before.isoformat()}, headers=desk.auth())
    problem(early, 404, "ticket-not-found")


async def test_search_finds_subject_description_and_public_notes_but_not_internal_ones(desk: Desk) -> None:
    first = await desk.ticket("alpha")
    second = await desk.ticket("bravo")
    notes = f"/v1/tickets/{second}/notes"
    await desk.http.post(notes, json={"text": "Replaced the FUSER unit", "visibility": "public"}, headers=desk.auth())
    await desk.http.post(notes, json={"text": "secret toner stash", "visibility": "internal"}, headers=desk.auth())

    async def found(text: str) -> list[str]:
        response = await desk.http.get("/v1/tickets", params={"q": text}, headers=desk.auth())
        assert response.status_code == 200, response.text
        return [t["number"] for t in response.json()["tickets"]]

    assert await found("CALL ALPHA") == [first]
    assert await found("fuser") == [second]
    assert await found("toner") == []
    assert await found("%") == [] and await found("_") == []  # wildcards are searched as text


async def _read_events(common: CommonSettings, until_type: str, timeout: float = 20.0) -> list[Envelope[Any]]:
    consumer = AIOKafkaConsumer(
        TICKET_EVENTS_TOPIC.qualified(common.kafka_topic_prefix),
        bootstrap_servers=common.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    messages: list[Envelope[Any]] = []
    try:
        deadline = time.monotonic() + timeout
        while until_type not in {m.type for m in messages}:
            assert time.monotonic() < deadline, "the relay did not publish in time"
            for part in (await consumer.getmany(timeout_ms=200)).values():
                messages += [parse_message(r.value) for r in part]
    finally:
        await consumer.stop()
    return sorted(messages, key=lambda m: (str(m.ticket_id), m.data.version))
