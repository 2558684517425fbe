"""POST /v1/incidents refuses bad input with a problem+json that says what is wrong.

These requests never reach Kafka (the broker is not even started); the
accepted path is tested against the real broker in
tests/integration/test_intake_incidents.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from runtime.settings import CommonSettings
from services.intake.bootstrap import build
from services.intake.config import Settings

VALID: dict[str, Any] = {"contact": {"email": "ada.lovelace@example.com"}, "subject": "Printer on fire"}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # Nothing listens on port 9: a publish can never be acknowledged.
    common = CommonSettings(kafka_bootstrap_servers="127.0.0.1:9")
    service = build(common, Settings(max_body_bytes=4096, publish_timeout_s=0.5))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://intake") as c:
        yield c


def fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == response.status_code and body["title"] and body["detail"]
    return [e["field"] for e in body.get("errors", [])]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subject": None}, "subject"),
        ({"subject": "   "}, "subject"),
        ({"subject": "x" * 301}, "subject"),
        ({"impact": "huge"}, "impact"),
        ({"urgency": 3}, "urgency"),
        ({"channel": "pigeon"}, "channel"),
        ({"channel_message_id": ""}, "channel_message_id"),
        ({"components": "vpn"}, "components"),
        ({"contact": {}}, "contact"),
        ({"contact": {"name": "Only a name"}}, "contact"),
        ({"contact": {"email": "a@example.com", "fax": "123"}}, "contact.fax"),
        ({"priority": 1}, "priority"),
    ],
)
async def test_an_invalid_field_is_named_in_a_422(client: httpx.AsyncClient, change: dict[str, Any], field: str) -> None:
    body = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    response = await client.post("/v1/incidents", json=body)
    assert response.status_code == 422
    assert fields(response) == [field]
    assert field in response.json()["detail"]


async def test_a_body_that_is_not_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/incidents", content=b"{subject: oops", headers={"content-type": "application/json"})
    assert response.status_code == 400
    fields(response)


async def test_a_body_sent_as_a_form_is_a_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/incidents", data={"subject": "x"})
    assert response.status_code == 415
    fields(response)


async def test_a_body_over_the_limit_is_a_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/incidents", json={**VALID, "description": "x" * 5000})
    assert response.status_code == 413
    fields(response)


async def test_a_streamed_body_over_the_limit_is_a_413_without_content_length(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    response = await client.post("/v1/incidents", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_an_idempotency_key_that_contradicts_the_body_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/incidents", json={**VALID, "channel_message_id": "a"}, headers={"Idempotency-Key": "b"}
    )
    assert response.status_code == 422
    assert fields(response) == ["Idempotency-Key"]


async def test_an_incident_kafka_did_not_acknowledge_is_a_503_not_an_acceptance(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/incidents", json=VALID)
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert "post it again" in response.json()["detail"]
    assert response.json()["channel_message_id"]
