"""The chat channel: a WebSocket session through intake's ASGI app, against the real broker.

The session is driven at the ASGI level (the same frames uvicorn would
deliver), in the test's event loop, so the service's Kafka producer is the
real one: one conversation opens one incident; when the ticket is opened
(a ticket.opened event on the ticket topic) the widget is told its number,
and later lines come out as replies to it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from contracts.envelope import new_envelope
from contracts.incidents import Channel, IncidentIdentified
from contracts.tickets import TicketOpened, TicketOpenedData
from contracts.topics import INCIDENTS_IDENTIFIED, TICKET_EVENTS_TOPIC
from runtime.settings import CommonSettings
from runtime.topics_admin import ensure_topics
from services.intake.bootstrap import build
from services.intake.config import Settings
from tests.support.kafka import produce, read_all, wait_for

ROOT = Path(__file__).resolve().parents[2]


class Session:
    """A WebSocket client speaking ASGI to the app."""

    def __init__(self, app: Any, path: str = "/v1/channels/chat") -> None:
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {"type": "websocket", "path": path, "raw_path": path.encode(), "query_string": b"", "headers": [],
                 "scheme": "ws", "server": ("intake", 80), "client": ("127.0.0.1", 5000), "subprotocols": [],
                 "asgi": {"version": "3.0"}}  # fmt: skip
        self._to_app.put_nowait({"type": "websocket.connect"})
        self._task = asyncio.create_task(app(scope, self._to_app.get, self.from_app.put))

    async def send(self, frame: dict[str, Any] | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self._to_app.put({"type": "websocket.receive", "text": text})

    async def receive(self) -> dict[str, Any]:
        while True:
            event = await asyncio.wait_for(self.from_app.get(), 30)
            if event["type"] == "websocket.send":
                return json.loads(event["text"])
            if event["type"] == "websocket.close":
                return {"type": "closed", "code": event.get("code"), "reason": event.get("reason")}

    async def close(self) -> None:
        await self._to_app.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self._task, 10)


class Chat:
    def __init__(self, bootstrap: str, prefix: str, app: Any) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.app = app

    async def identified_for(self, channel_message_id: str) -> IncidentIdentified:
        async def ours() -> list[ConsumerRecord]:
            records = await read_all(self.bootstrap, self.prefix + INCIDENTS_IDENTIFIED.name, timeout=5)
            return [r for r in records if json.loads(r.value)["data"]["channel_message_id"] == channel_message_id]

        [record] = await wait_for(ours, timeout=30)
        return IncidentIdentified.model_validate_json(record.value)

    async def ticket_opened_for(self, identified: IncidentIdentified, number: str) -> None:
        """What the ticket service does: open a ticket for the incident and relay ticket.opened."""
        data = identified.data
        opened = TicketOpenedData(
            number=number, version=1, channel=data.channel, channel_message_id=data.channel_message_id,
            reported_at=data.received_at, subject=data.subject, description=data.description,
            customer=data.customer,
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
async def chat(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Chat]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix, partitions=3)
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=prefix, kafka_retry_backoff_ms=10
    )
    settings = Settings(
        directory_file=ROOT / "services/intake/directory.example.yaml",
        database_url=f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('intake') / 'intake.db'}",
        smtp_enabled=False,
        wait_for_ticket_s=20,
    )
    service = build(common, settings)
    async with service._lifespan(service.app):
        yield Chat(kafka_bootstrap, prefix, service.app)


async def test_a_conversation_opens_one_incident_and_its_later_lines_reply_to_its_ticket(chat: Chat) -> None:
    conversation = f"conv-{uuid.uuid4().hex}"
    session = Session(chat.app)
    await session.send({"type": "start", "conversation_id": conversation, "contact": {"email": "alan.turing@example.com"},
                        "text": "MATLAB licence expired\\nsince today", "language": "de-ch"})  # fmt: skip
    assert await session.receive() == {"type": "accepted", "conversation_id": conversation}

    opening = await chat.identified_for(conversation)
    assert opening.data.channel == Channel.CHAT
    customer = opening.data.customer  # the widget is public: what it says is kept, unverified
    assert (customer.verified, customer.customer_id, customer.email) == (False, None, "alan.turing@example.com")
    assert (customer.language, opening.data.reply_to_number) == ("de-CH", None)
    await chat.ticket_opened_for(opening, "HD-501")
    assert await session.receive() == {"type": "ticket", "number": "HD-501"}

    await session.send({"type": "line", "id": "l-2", "text": "I restarted, still expired"})
    assert await session.receive() == {"type": "accepted", "id": "l-2"}
    reply = await chat.identified_for(f"{conversation}/l-2")
    assert (reply.data.reply_to_number, reply.data.description) == ("HD-501", "I restarted, still expired")
    assert (reply.data.customer.verified, reply.data.customer.email) == (False, "alan.turing@example.com")
    await session.close()


async def test_a_chat_claiming_a_vip_customers_id_opens_no_ticket_in_their_name_and_injects_no_header(
    chat: Chat,
) -> None:
    conversation = f"conv-{uuid.uuid4().hex}"
    session = Session(chat.app)
    await session.send({"type": "start", "conversation_id": conversation, "contact": {"user_id": "u-1001"},
                        "subject": "Hello\r\nReply-To: eve@example.net\r\n\r\nPay to IBAN X", "text": "hi"})  # fmt: skip
    assert await session.receive() == {"type": "accepted", "conversation_id": conversation}
    opening = await chat.identified_for(conversation)
    customer = opening.data.customer
    assert (customer.identified, customer.verified, customer.claimed_user_id) == (False, False, "u-1001")
    assert (customer.customer_id, customer.name, customer.email, customer.vip) == (None, None, None, False)
    assert opening.data.subject == "Hello Reply-To: eve@example.net Pay to IBAN X"
    await session.close()


async def test_a_start_frame_with_an_address_that_is_none_is_refused_and_says_why(chat: Chat) -> None:
    session = Session(chat.app)
    await session.send({"type": "start", "contact": {"email": "eve@example.net\r\nBcc: all@example.com"}, "text": "hi"})
    error = await session.receive()
    assert error["type"] == "error" and "contact.email" in error["detail"] and "not an e-mail address" in error["detail"]
    assert (await session.receive())["code"] == 1008


async def test_a_bad_frame_mid_conversation_is_answered_with_an_error_and_the_session_goes_on(chat: Chat) -> None:
    session = Session(chat.app)
    await session.send({"type": "start", "contact": {"phone": "+1 202 555 0147"}, "text": "hello"})
    accepted = await session.receive()
    assert accepted["type"] == "accepted" and accepted["conversation_id"]
    await session.send("not json")
    error = await session.receive()
    assert error["type"] == "error" and "expected a 'line' frame" in error["detail"]
    await session.close()


async def test_a_session_that_does_not_start_properly_is_closed_with_a_reason(chat: Chat) -> None:
    session = Session(chat.app)
    await session.send({"type": "line", "text": "no start frame"})
    error = await session.receive()
    assert error["type"] == "error" and "expected a 'start' frame" in error["detail"]
    assert await session.receive() == {
        "type": "closed",
        "code": 1008,
        "reason": "the first frame must be a valid 'start' frame",
    }
