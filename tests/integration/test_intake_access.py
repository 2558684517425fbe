"""Who may use intake's HTTP endpoints: closed by default, keys with scopes, webhooks only when signed.

Intake runs in-process against the real broker (its own topics); requests go
through its ASGI app. One test starts it as a process without the development
switch to see it refuse to run open.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from runtime.settings import CommonSettings
from runtime.topics_admin import ensure_topics
from services.intake.bootstrap import build
from services.intake.config import Settings

ROOT = Path(__file__).resolve().parents[2]
KEYS = "webform=k-report, hr:write-directory=k-hr, support-desk:read-directory=k-read"
INCIDENT = {"contact": {"email": "ada.lovelace@example.com"}, "subject": "VPN"}


@pytest.fixture(scope="module")
async def intake(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix, partitions=3)
    common = CommonSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=prefix)
    settings = Settings(  # no Twilio token, no Meta secret: those channels are not configured
        directory_file=ROOT / "services/intake/directory.example.yaml",
        database_url=f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('intake') / 'intake.db'}",
        smtp_enabled=False,
        api_keys=KEYS,
    )
    service = build(common, settings)
    async with service._lifespan(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield client


def test_intake_refuses_to_start_without_api_keys_unless_on_a_development_machine(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HELPDESK_DEVELOPMENT", "INTAKE_API_KEYS")}
    env["INTAKE_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"
    started = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "services.intake"], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert started.returncode == 2, started.stderr
    assert "INTAKE_API_KEYS: required" in started.stderr and "HELPDESK_DEVELOPMENT" in started.stderr


async def test_nobody_without_a_key_reads_or_changes_the_directory(intake: httpx.AsyncClient) -> None:
    assert (await intake.get("/v1/customers/u-1001")).status_code == 401
    hijack = await intake.put("/v1/customers/u-1001", json={"name": "Ada", "email": "eve@example.net"})
    assert hijack.status_code == 401 and hijack.headers["content-type"] == "application/problem+json"
    entry = await intake.get("/v1/customers/u-1001", headers={"X-API-Key": "k-read"})
    assert entry.status_code == 200 and entry.json()["email"] == "ada.lovelace@example.com"  # unchanged


async def test_a_reporting_key_may_report_but_not_read_or_change_the_directory(intake: httpx.AsyncClient) -> None:
    report = {"X-API-Key": "k-report"}
    assert (await intake.post("/v1/incidents", json=INCIDENT, headers=report)).status_code == 202
    for refused in (
        await intake.get("/v1/customers/u-1001", headers=report),
        await intake.put("/v1/customers/u-9", json={"name": "Eve"}, headers=report),
        await intake.delete("/v1/customers/u-1001", headers=report),
    ):
        assert refused.status_code == 403 and "'webform' has no" in refused.json()["detail"]


async def test_directory_keys_read_and_write_as_their_scopes_say_and_do_not_report(intake: httpx.AsyncClient) -> None:
    reader, writer = {"X-API-Key": "k-read"}, {"Authorization": "Bearer k-hr"}
    assert (await intake.put("/v1/customers/u-9", json={"name": "Nine"}, headers=reader)).status_code == 403
    assert (await intake.put("/v1/customers/u-9", json={"name": "Nine"}, headers=writer)).status_code == 201
    assert (await intake.get("/v1/customers/u-9", headers=writer)).json()["name"] == "Nine"
    assert (await intake.post("/v1/incidents", json=INCIDENT, headers=writer)).status_code == 403


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/incidents", INCIDENT),
        ("/v1/channels/social", {"platform": "x", "kind": "mention", "message_id": "1", "author": {"handle": "@a"},
                                 "text": "hi"}),  # fmt: skip
        ("/v1/channels/phone/events", {"event": "call.started", "call_id": "c-1", "caller": "+442079460018"}),
    ],
)
async def test_every_reporting_endpoint_needs_a_key(intake: httpx.AsyncClient, path: str, body: object) -> None:
    assert (await intake.post(path, json=body)).status_code == 401


async def test_health_readiness_and_metrics_need_no_key(intake: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await intake.get(path)).status_code == 200, path


async def test_provider_webhooks_without_their_secrets_answer_503_and_never_take_an_unsigned_contact(
    intake: httpx.AsyncClient,
) -> None:
    sms = await intake.post(
        "/v1/channels/sms/twilio",
        content="MessageSid=SM1&From=%2B442079460018&Body=hi",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert sms.status_code == 503 and "INTAKE_TWILIO_AUTH_TOKEN" in sms.json()["detail"]
    meta = await intake.post("/v1/channels/social/meta", json={"object": "page", "entry": []})
    assert meta.status_code == 503 and "INTAKE_META_APP_SECRET" in meta.json()["detail"]
    check = await intake.get(
        "/v1/channels/social/meta", params={"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}
    )
    assert check.status_code == 403
