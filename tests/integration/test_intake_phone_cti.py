"""Telephone calls over real HTTP and the real broker: a call opens a ticket, its end replies to it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiokafka import ConsumerRecord

from contracts.envelope import new_envelope
from contracts.incidents import IncidentIdentified
from contracts.tickets import TicketOpened, TicketOpenedData
from contracts.topics import INCIDENTS_IDENTIFIED, TICKET_EVENTS_TOPIC
from runtime.settings import CommonSettings
from runtime.topics_admin import ensure_topics
from services.intake.bootstrap import build
from services.intake.config import Settings
from tests.support.kafka import produce, read_all, wait_for

ROOT = Path(__file__).resolve().parents[2]
KEY = "cti-key"


class Phone:
    def __init__(self, bootstrap: str, prefix: str, client: httpx.AsyncClient) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.client = client

    async def event(self, **body: object) -> httpx.Response:
        return await self.client.post("/v1/channels/phone/events", json=body, headers={"X-API-Key": KEY})

    async def identified_for(self, channel_message_id: str) -> IncidentIdentified:
        async def ours() -> list[ConsumerRecord]:
            records = await read_all(self.bootstrap, self.prefix + INCIDENTS_IDENTIFIED.name, timeout=5)
            return [r for r in records if json.loads(r.value)["data"]["channel_message_id"] == channel_message_id]

        [record] = await wait_for(ours, timeout=30)
        return IncidentIdentified.model_validate_json(record.value)

    async def ticket_opened_for(self, identified: IncidentIdentified, number: str) -> None:
        data = identified.data
        opened = TicketOpenedData(
            number=number, version=1, channel=data.channel, channel_message_id=data.channel_message_id,
            reported_at=data.received_at, subject=data.subject, description=data.description, customer=data.customer,
        )  # fmt: skip
        ticket_id = uuid.uuid4()
        message = new_envelope(TicketOpened, opened, ticket_id=ticket_id, causation=identified)
        await produce(
            self.bootstrap,
            self.prefix + TICKET_EVENTS_TOPIC.name,
            message.model_dump_json().encode(),
            key=str(ticket_id).encode(),
        )


@pytest.fixture(scope="module")
async def phone(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Phone]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix, partitions=3)
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=prefix, kafka_retry_backoff_ms=10
    )
    settings = Settings(
        directory_file=ROOT / "services/intake/directory.example.yaml",
        database_url=f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('intake') / 'intake.db'}",
        smtp_enabled=False,
        api_keys=f"cti={KEY}",
        wait_for_ticket_s=15,
    )
    service = build(common, settings)
    async with service._lifespan(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield Phone(kafka_bootstrap, prefix, client)


async def test_a_call_opens_a_ticket_for_the_caller_and_its_end_replies_to_that_ticket(phone: Phone) -> None:
    call_id = f"call-{uuid.uuid4().hex}"
    assert (await phone.event(event="call.started", call_id=call_id, caller="(0161) 496-0742")).status_code == 202
    assert (await phone.event(event="call.ivr", call_id=call_id, components=["vpn"], urgency="high")).status_code == 202
    answered = await phone.event(event="call.answered", call_id=call_id, agent_id="agent-7")
    assert answered.status_code == 202 and answered.json()["channel_message_id"] == call_id

    opening = await phone.identified_for(call_id)
    assert (opening.data.customer.customer_id, opening.data.customer.identified_by) == ("u-1003", "phone")
    assert (opening.data.components, opening.data.urgency) == (["vpn"], "high")
    await phone.ticket_opened_for(opening, "HD-7001")

    ended = await phone.event(event="call.ended", call_id=call_id, duration_s=312, summary="Reset the VPN token")
    assert ended.status_code == 202 and ended.json()["reply_to_number"] == "HD-7001"
    reply = await phone.identified_for(f"{call_id}/ended")
    assert reply.data.reply_to_number == "HD-7001" and "5 min 12 s" in reply.data.description


async def test_a_call_nobody_answered_opens_a_ticket_to_call_back(phone: Phone) -> None:
    call_id = f"call-{uuid.uuid4().hex}"
    await phone.event(event="call.started", call_id=call_id, caller="+44 117 496 0123")
    assert (await phone.event(event="call.ended", call_id=call_id, duration_s=40)).status_code == 202
    missed = await phone.identified_for(call_id)
    assert missed.data.subject == "Missed call" and missed.data.customer.customer_id == "u-1005"


async def test_an_event_for_an_unknown_call_or_without_a_key_is_refused(phone: Phone) -> None:
    unknown = await phone.event(event="call.answered", call_id="never-started", agent_id="a")
    assert unknown.status_code == 404 and "call.started" in unknown.json()["detail"]
    no_key = await phone.client.post(
        "/v1/channels/phone/events", json={"event": "call.started", "call_id": "x", "caller": "1"}
    )
    assert no_key.status_code == 401
