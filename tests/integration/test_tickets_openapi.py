"""The ticket API's OpenAPI document: checked in, current, and true of the running app.

``docs/tickets-openapi.json`` must be exactly what ``python -m services.tickets.openapi``
generates. Schemathesis then generates requests from the app's own document
(valid ones and invalid ones) and sends them, with a team lead's token, to the
service running in-process against a real broker and a SQLite file holding a
few tickets: no request may make it answer 5xx, and every answer must be one
the document describes (status, content type, headers, body).
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from contracts.commands import RouteTicket, RouteTicketData
from contracts.envelope import new_envelope
from contracts.incidents import (
    Channel,
    CustomerProfile,
    IncidentIdentified,
    IncidentIdentifiedData,
)
from contracts.topics import INCIDENTS_IDENTIFIED, ROUTING_COMMANDS
from runtime.settings import CommonSettings
from runtime.topics_admin import ensure_topics
from services.tickets import openapi
from tests.support.tokens import AUTH, mint
from services.tickets.bootstrap import build
from services.tickets.config import Settings
from services.tickets.handlers import ticket_id_for
from tests.support.kafka import delete_topics, wait_for

TICKETS = 6
QUEUES = ("service-desk", "finance-apps")
# What exists: about half the generated requests are pointed at these (see aimed_at_existing).
EXISTING = {
    "ref": [f"HD-{n}" for n in range(1, TICKETS + 1)],
    "target": [f"HD-{n}" for n in range(1, TICKETS + 1)],
    "queue": list(QUEUES),
}
# Read forever (server-sent events): a request never ends, so there is no response to check.
ENDLESS = "/v1/stream"
BASE_URL = "http://tickets.test"


# --- the checked-in document ----------------------------------------------------------


def test_the_checked_in_openapi_document_is_what_the_app_generates() -> None:
    assert openapi.stale() == [], "run: python -m services.tickets.openapi"


def test_the_generator_writes_sorted_keys_indented_by_two_with_a_trailing_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openapi, "DOCUMENT", tmp_path / "tickets-openapi.json")
    assert openapi.main([]) == 0
    text = openapi.DOCUMENT.read_text(encoding="utf-8")
    document = json.loads(text)
    assert text == json.dumps(document, indent=2, sort_keys=True) + "\n"
    assert document == openapi.openapi_document()
    assert "/v1/tickets/{ref}/claim" in document["paths"]
    assert openapi.main(["--check"]) == 0


def test_a_stale_document_fails_the_check_naming_each_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = openapi.openapi_document()
    del stale["paths"]["/v1/queues"]
    stale["info"]["title"] = "an older title"
    stale["paths"]["/v1/tickets/{ref}/gone"] = {}
    monkeypatch.setattr(openapi, "DOCUMENT", tmp_path / "tickets-openapi.json")
    openapi.DOCUMENT.write_text(openapi.render(stale), encoding="utf-8")

    assert openapi.main(["--check"]) == 1
    said = capsys.readouterr().err.splitlines()
    assert said[:3] == [
        "changed: info.title",
        "added: paths['/v1/queues']",
        "removed: paths['/v1/tickets/{ref}/gone']",
    ]
    assert "run: python -m services.tickets.openapi" in said[-1]


def test_a_document_with_the_same_content_laid_out_otherwise_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openapi, "DOCUMENT", tmp_path / "docs" / "tickets-openapi.json")
    openapi.DOCUMENT.parent.mkdir()
    openapi.DOCUMENT.write_text(json.dumps(openapi.openapi_document()), encoding="utf-8")
    assert openapi.stale() == ["docs/tickets-openapi.json is not laid out as the generator writes it"]
    openapi.DOCUMENT.unlink()
    assert openapi.stale() == ["missing: docs/tickets-openapi.json"]


# --- schemathesis against the app ---------------------------------------------------------


def incident(n: int) -> IncidentIdentified:
    data = IncidentIdentifiedData(
        channel=Channel.EMAIL,
        channel_message_id=f"openapi-{n}",
        received_at=datetime.now(UTC),
        subject=f"VPN drops every hour ({n})",
        description="Since the update",
        components=["vpn"],
        customer=CustomerProfile(
            identified=True,
            identified_by="email",
            customer_id=f"c-{n}",
            email=f"c{n}@example.com",
        ),
    )
    return new_envelope(IncidentIdentified, data, correlation_id=f"contact-{n}")  # type: ignore[return-value]


def route(message: IncidentIdentified, queue: str) -> RouteTicket:
    data = RouteTicketData(
        priority=3,
        priority_rule="default",
        priority_reason="t",
        queue=queue,
        queue_rule="default",
        queue_reason="t",
    )
    return new_envelope(RouteTicket, data, ticket_id=ticket_id_for(message.data), correlation_id="c")  # type: ignore[return-value]




def lead_headers() -> dict[str, str]:
    return {"Authorization": "Bearer " + mint("lead-1", roles=("agent", "lead"))}


@pytest.fixture(scope="module")
async def tickets_api(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the ticket service running in-process, with a few tickets in it (some routed)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix, partitions=3)
    database = tmp_path_factory.mktemp("openapi") / "tickets.db"
    common = CommonSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=prefix)
    service = build(common, Settings(database_url=f"sqlite+aiosqlite:///{database}"), AUTH)
    try:
        async with (
            service._lifespan(service.app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url=BASE_URL) as client,
        ):
            incidents = [incident(n) for n in range(TICKETS)]
            await _produce(kafka_bootstrap, INCIDENTS_IDENTIFIED.qualified(prefix), incidents)
            await wait_for(lambda: _listed(client, "/v1/tickets", "tickets", TICKETS), timeout=30)
            commands = [route(m, QUEUES[n % len(QUEUES)]) for n, m in enumerate(incidents)]
            await _produce(kafka_bootstrap, ROUTING_COMMANDS.qualified(prefix), commands)
            await wait_for(lambda: _listed(client, "/v1/queues", "queues", len(QUEUES)), timeout=30)
            yield client
    finally:
        await delete_topics(kafka_bootstrap, prefix)


async def _listed(client: httpx.AsyncClient, path: str, field: str, count: int) -> bool:
    response = await client.get(path, headers=lead_headers())
    assert response.status_code == 200, response.text
    return len(response.json()[field]) == count


async def _produce(bootstrap: str, topic: str, messages: list[Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for m in messages:
            key = str(m.ticket_id) if m.ticket_id else m.data.partition_key
            await producer.send(topic, m.model_dump_json().encode(), key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


def aimed_at_existing(case: Any) -> None:
    """Point about half the generated requests at tickets and queues that exist: the path parameters, and the
    tickets a body names (merge into, link to). Half the generated If-Match headers are dropped, so that
    requests get past them. Each choice is decided by the generated value itself, so that hypothesis can
    replay and shrink a failure."""
    for name, value in list((case.path_parameters or {}).items()):
        if name in EXISTING and (digest := zlib.crc32(str(value).encode())) % 2:
            case.path_parameters[name] = EXISTING[name][digest // 2 % len(EXISTING[name])]
    if isinstance(case.body, dict):
        for name in ("into", "target"):
            value = case.body.get(name)
            if isinstance(value, str) and (digest := zlib.crc32(value.encode())) % 2:
                case.body[name] = EXISTING["ref"][digest // 2 % len(EXISTING["ref"])]
    for name in [h for h in (case.headers or {}) if h.lower() == "if-match"]:
        if zlib.crc32(str(case.headers[name]).encode()) % 2:
            del case.headers[name]


async def send(client: httpx.AsyncClient, case: Any) -> httpx.Response:
    """The generated request, sent as schemathesis would send it (it reaches the app through httpx here)."""
    request = case.as_transport_kwargs(base_url=BASE_URL, headers=lead_headers())
    # The lead's token is the credential: a generated integration key would be checked first and refused.
    headers = {k: v for k, v in request["headers"].items() if k.lower() != "x-api-key"}
    body: dict[str, Any] = {}
    if "json" in request:
        body["json"] = request["json"]
    if "data" in request:  # requests' name for a raw or form body
        data = request["data"]
        body["content" if isinstance(data, (bytes, str)) else "data"] = data
    if "files" in request:
        body["files"] = request["files"]
    client.cookies.clear()
    return await client.request(
        request["method"],
        request["url"],
        headers=headers,
        params=request.get("params"),
        cookies=request.get("cookies") or None,
        **body,
    )


# --- what schemathesis found once: answers the document did not describe (fixed; kept as checks) ------------

PROBLEM_JSON = "application/problem+json"
def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in document["paths"].items() for method, op in item.items()]


def test_every_invalid_request_answer_is_documented_as_the_problem_json_it_is() -> None:
    undocumented = [
        f"{method.upper()} {path}"
        for method, path, op in operations(openapi.openapi_document())
        if "422" in op["responses"] and PROBLEM_JSON not in op["responses"]["422"].get("content", {})
    ]
    assert undocumented == []


def test_every_operation_that_refuses_a_malformed_if_match_cursor_or_body_documents_400() -> None:
    undocumented = [
        f"{method.upper()} {path}"
        for method, path, op in operations(openapi.openapi_document())
        if any(p["name"] in ("If-Match", "cursor") for p in op.get("parameters", [])) and "400" not in op["responses"]
    ]
    assert undocumented == []


schema = schemathesis.openapi.from_dict(openapi.openapi_document()).exclude(path=ENDLESS)


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
async def test_no_generated_request_makes_the_ticket_api_fail_or_answer_off_its_document(
    case: Any, tickets_api: httpx.AsyncClient
) -> None:
    aimed_at_existing(case)
    response = await send(tickets_api, case)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
        ],
    )
