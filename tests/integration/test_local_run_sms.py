"""The local run's intake takes an SMS: scripts/run gives it a development Twilio token, devtools.sms signs with it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from contracts.topics import INCIDENTS_REPORTED
from devtools.processes import Suite
from devtools.sms import sms_request
from runtime.settings import CommonSettings
from services.intake.bootstrap import build
from services.intake.config import Settings
from tests.support.kafka import read_all

ROOT = Path(__file__).resolve().parents[2]
LOCAL_INTAKE = "http://127.0.0.1:8001"  # where scripts/run serves intake, and the URL Twilio's signature covers


async def test_an_sms_sent_with_devtools_sms_to_the_local_runs_intake_is_answered_and_reported(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_run = Suite(state_dir=tmp_path, kafka_bootstrap=kafka_bootstrap).env()
    for name in ("INTAKE_TWILIO_AUTH_TOKEN", "INTAKE_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
        if name in local_run:
            monkeypatch.setenv(name, local_run[name])
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}",
        directory_file=ROOT / "services/intake/directory.example.yaml",
        smtp_enabled=False,
    )
    service = build(CommonSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix), settings)
    url, content, headers = sms_request(
        LOCAL_INTAKE, local_run.get("INTAKE_TWILIO_AUTH_TOKEN", ""), "Printer on fire", "+442079460018"
    )
    async with service._lifespan(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL_INTAKE) as client:
            response = await client.post(url, content=content, headers=headers)

    assert response.status_code == 200, response.text
    [record] = await read_all(kafka_bootstrap, topic_prefix + INCIDENTS_REPORTED.name)
    reported = json.loads(record.value)["data"]
    assert (reported["channel"], reported["subject"]) == ("sms", "Printer on fire")


def test_the_local_run_gives_intake_a_twilio_token_only_with_the_development_switch(tmp_path: Path) -> None:
    assert Suite(state_dir=tmp_path, kafka_bootstrap="x").env()["INTAKE_TWILIO_AUTH_TOKEN"]
    without = Suite(state_dir=tmp_path, kafka_bootstrap="x", extra_env={"HELPDESK_DEVELOPMENT": "false"}).env()
    assert "INTAKE_TWILIO_AUTH_TOKEN" not in without


def test_a_twilio_token_of_your_own_in_the_local_runs_environment_is_the_one_intake_gets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTAKE_TWILIO_AUTH_TOKEN", "my-twilio-accounts-token")
    env = Suite(state_dir=tmp_path, kafka_bootstrap="x").env()
    assert env["INTAKE_TWILIO_AUTH_TOKEN"] == "my-twilio-accounts-token"


def test_readme_and_the_sms_guide_say_how_the_sms_webhook_is_turned_on_locally_and_in_a_deployment() -> None:
    for page in ("README.md", "docs/intake/sms.md"):
        text = re.sub(r"\s+", " ", (ROOT / page).read_text())
        for needed in ("INTAKE_TWILIO_AUTH_TOKEN", "INTAKE_PUBLIC_URL", "python -m devtools.sms", "scripts/run"):
            assert needed in text, (page, needed)
