"""The ticket HTTP API in a running service, with real tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from aiokafka import AIOKafkaConsumer

from contracts.commands import RouteTicket, RouteTicketData
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import Channel, CustomerProfile, IncidentIdentified, IncidentIdentifiedData
from contracts.registry import parse_message
from contracts.topics import TICKET_EVENTS_TOPIC
from runtime.consumer import Delivery
from runtime.settings import CommonSettings
from services.tickets.adapters.database import TicketDatabase
from services.tickets.auth import mint
from services.tickets.bootstrap import build
from services.tickets.config import Settings
from services.tickets.handlers import apply_commands, open_tickets, ticket_id_for

SECRET = "integration-test-secret-0123456789abcdef"
PROBLEM = "application/problem+json"


@dataclass
class Desk:
    """A running ticket service, an HTTP client for it, and a way to put tickets in it."""

    http: httpx.AsyncClient
    settings: Settings
    db: TicketDatabase
    common: CommonSettings

    def auth(self, agent: str = "alice", roles: tuple[str, ...] = ("agent",)) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(self.settings, agent, roles)}"}

    async def ticket(self, message_id: str, *, priority: int = 3, queue: str = "service-desk") -> str:
        """Open and route a ticket (as intake and routing would); returns its number."""
        data = IncidentIdentifiedData(
            channel=Channel.PHONE,
            channel_message_id=message_id,
            received_at=datetime.now(UTC),
            subject=f"Call {message_id}",
            customer=CustomerProfile(identified=True, identified_by="phone", customer_id="c-9", phone="+4930123456"),
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


@pytest.fixture
async def desk(database_url: str, kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Desk]:
    common = CommonSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10)
    settings = Settings(database_url=database_url, jwt_secret=SECRET)
    service = build(common, settings)
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
    assert (ticket["number"], ticket["status"], ticket["priority"], ticket["queue"]) == (number, "open", 3, "service-desk")
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
        {"sub": "alice", "roles": ["agent"], "iss": "helpdesk", "aud": "helpdesk-api", "exp": now - 600},
        SECRET,
        algorithm="HS256",
    )
    forged = mint(Settings(jwt_secret="another-secret-of-enough-length-0123456789"), "alice")
    for token in (expired, forged, "garbage"):
        response = await desk.http.post(f"/v1/tickets/{number}/claim", headers={"Authorization": f"Bearer {token}"})
        problem(response, 401, "invalid-token")
        assert response.headers["www-authenticate"].startswith('Bearer realm="helpdesk", error="invalid_token"')
    unchallenged = await desk.http.get("/v1/tickets", headers={"Authorization": "Basic YWxpY2U6cHc="})
    assert problem(unchallenged, 401, "unauthenticated") and unchallenged.headers["www-authenticate"]
    no_role = await desk.http.get("/v1/tickets", headers=desk.auth("eve", roles=("customer",)))
    problem(no_role, 403, "forbidden")
    still_open = await desk.http.get(f"/v1/tickets/{number}", headers=desk.auth())
    assert still_open.json()["assignee"] is None


async def test_a_stale_if_match_is_refused_with_412_and_changes_nothing(desk: Desk) -> None:
    number = await desk.ticket("call-1")
    response = await desk.http.post(f"/v1/tickets/{number}/claim", headers={**desk.auth(), "If-Match": '"2"'})
    body = problem(response, 412, "version-mismatch")
    assert body["version"] == 3 and response.headers["etag"] == '"3"'
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
