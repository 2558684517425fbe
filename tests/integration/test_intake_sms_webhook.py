"""The SMS channel against real HTTP: Twilio-format webhooks, signed and not, come out as incidents."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from aiokafka import ConsumerRecord

from contracts.incidents import IncidentIdentified
from contracts.topics import INCIDENTS_IDENTIFIED
from runtime.settings import CommonSettings
from runtime.topics_admin import ensure_topics
from services.intake.bootstrap import build
from services.intake.channels.twilio import signature
from services.intake.config import Settings
from tests.support.kafka import read_all, wait_for

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "twilio-test-auth-token"
PUBLIC = "https://helpdesk.example.com"
PATH = "/v1/channels/sms/twilio"


class SmsIntake:
    def __init__(self, bootstrap: str, prefix: str, client: httpx.AsyncClient) -> None:
        self.bootstrap = bootstrap
        self.client = client
        self.identified = prefix + INCIDENTS_IDENTIFIED.name

    async def post(self, form: list[tuple[str, str]], sig: str | None = None) -> httpx.Response:
        sig = signature(TOKEN, PUBLIC + PATH, form) if sig is None else sig
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig}
        return await self.client.post(PATH, content=urlencode(form), headers=headers)

    async def identified_for(self, channel_message_id: str, count: int = 1) -> list[IncidentIdentified]:
        async def ours() -> list[ConsumerRecord]:
            records = await read_all(self.bootstrap, self.identified, at_least=1, timeout=5)
            found = [r for r in records if json.loads(r.value)["data"]["channel_message_id"] == channel_message_id]
            return found if len(found) >= count else []

        return [IncidentIdentified.model_validate_json(r.value) for r in await wait_for(ours, timeout=30)]


@pytest.fixture(scope="module")
async def intake(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SmsIntake]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix, partitions=3)
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=prefix, kafka_retry_backoff_ms=10
    )
    settings = Settings(
        directory_file=ROOT / "services/intake/directory.example.yaml",
        database_url=f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('intake') / 'intake.db'}",
        smtp_enabled=False,
        public_url=PUBLIC,
        twilio_auth_token=TOKEN,
    )
    service = build(common, settings)
    async with service._lifespan(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake-behind-proxy") as client:
            yield SmsIntake(kafka_bootstrap, prefix, client)


def sms(body: str, sender: str = "07700 900123") -> list[tuple[str, str]]:
    return [("MessageSid", f"SM{uuid.uuid4().hex}"), ("AccountSid", "AC0"), ("From", sender),
            ("To", "+441234567890"), ("Body", body), ("NumMedia", "0")]  # fmt: skip


async def test_a_signed_sms_is_answered_with_twiml_and_comes_out_identified_by_phone(intake: SmsIntake) -> None:
    form = sms("Laptop will not boot")
    response = await intake.post(form)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml") and "<Response>" in response.text

    [identified] = await intake.identified_for(dict(form)["MessageSid"])
    assert (identified.data.channel.value, identified.data.subject) == ("sms", "Laptop will not boot")
    customer = identified.data.customer
    assert (customer.identified_by, customer.customer_id, customer.phone) == ("phone", "u-1002", "+447700900123")


async def test_an_sms_naming_an_open_ticket_carries_its_number(intake: SmsIntake) -> None:
    form = sms("HD-19: thanks, but it broke again")
    assert (await intake.post(form)).status_code == 200
    [identified] = await intake.identified_for(dict(form)["MessageSid"])
    assert identified.data.reply_to_number == "HD-19"


async def test_a_retried_webhook_is_the_same_incident(intake: SmsIntake) -> None:
    form = sms("Printer jam")
    assert (await intake.post(form)).status_code == (await intake.post(form)).status_code == 200
    identified = await intake.identified_for(dict(form)["MessageSid"], count=2)
    assert len({m.event_id for m in identified}) == 1


@pytest.mark.parametrize("sig", ["", "bm90IHRoZSBzaWduYXR1cmU=", "signed-for-the-wrong-url"])
async def test_an_sms_with_a_bad_signature_is_refused_with_403_and_published_nowhere(
    intake: SmsIntake, sig: str
) -> None:
    form = sms("Please reset my password")
    if sig == "signed-for-the-wrong-url":
        sig = signature(TOKEN, "http://intake-behind-proxy" + PATH, form)
    response = await intake.post(form, sig)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "X-Twilio-Signature" in response.json()["detail"]
    records = await read_all(intake.bootstrap, intake.identified, at_least=10**6, timeout=2)
    assert not [r for r in records if json.loads(r.value)["data"]["channel_message_id"] == dict(form)["MessageSid"]]


async def test_a_signed_request_that_is_no_message_is_refused_with_400(intake: SmsIntake) -> None:
    response = await intake.post([("AccountSid", "AC0"), ("Body", "no sid, no sender")])
    assert response.status_code == 400 and "missing MessageSid, From" in response.json()["detail"]


async def test_a_json_body_is_refused_with_415(intake: SmsIntake) -> None:
    response = await intake.client.post(PATH, json={"From": "+447700900123"})
    assert response.status_code == 415
