"""``/v1/channels/chat``: the web chat widget's WebSocket. One conversation is one incident.

The widget speaks JSON text frames. The first frame starts (or resumes) the
conversation and reports the incident; every later line is a customer reply
on the conversation's ticket (``reply_to_number``), once the ticket service
has opened it (intake learns the number from the ticket events and tells the
widget). Each frame is answered only after its incident is on the reported
topic. See docs/intake/chat.md for the protocol.

The widget is public: anyone can open the socket and type any user id or
address. So a chat contact is unverified (``contact_verified`` false): the
ticket is not opened in a directory customer's name, what the widget said is
kept as unverified contact data, its user id as a claim for the agent.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.incidents import Channel, ContactDetails, IncidentReportedData, LanguageTag
from runtime.logs import get_logger
from services.intake.adapters.ticket_threads import TicketThreads, channel_thread
from services.intake.reporting import CONTACTS, Flooded, NotAcknowledged, Reporter

MAX_FRAME_CHARS = 20_000
POLICY_VIOLATION = 1008
log = get_logger("intake.chat")


class Start(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: Literal["start"]
    conversation_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=100)
    contact: ContactDetails
    subject: str | None = Field(default=None, max_length=300)
    text: str = Field(min_length=1, max_length=MAX_FRAME_CHARS)
    language: LanguageTag = Field(default=None, max_length=35, description="The language the customer chose.")


class Line(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: Literal["line"]
    id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=90)
    text: str = Field(min_length=1, max_length=MAX_FRAME_CHARS)


class ChatFrameError(ValueError):
    """A frame the widget should not have sent; the text says why."""


def parse_frame(raw: str, expected: type[Start] | type[Line]) -> Start | Line:
    """A widget's frame, or :class:`ChatFrameError`."""
    if len(raw) > MAX_FRAME_CHARS + 2_000:
        raise ChatFrameError(f"a frame may be at most {MAX_FRAME_CHARS} characters of text")
    try:
        return expected.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(map(str, first["loc"])) or "frame"
        kind = "start" if expected is Start else "line"
        raise ChatFrameError(f"expected a '{kind}' frame; {where}: {first['msg']}") from None


def opening_incident(start: Start, received_at: datetime) -> IncidentReportedData:
    subject = start.subject or " ".join(start.text.splitlines()[0].split())[:80] or "Chat"
    return IncidentReportedData(
        channel=Channel.CHAT,
        channel_message_id=start.conversation_id,
        received_at=received_at,
        contact=start.contact,
        contact_verified=False,  # the widget is public: who the contact says they are is a claim
        subject=subject,
        description=start.text,
        language=start.language,
    )


def reply_incident(start: Start, line: Line, number: str | None, received_at: datetime) -> IncidentReportedData:
    return IncidentReportedData(
        channel=Channel.CHAT,
        channel_message_id=f"{start.conversation_id}/{line.id}",
        received_at=received_at,
        contact=start.contact,
        contact_verified=False,
        subject=" ".join(line.text.splitlines()[0].split())[:80] or "Chat",
        description=line.text,
        reply_to_number=number,
        language=start.language,
    )


def chat_router(reporter: Reporter, threads: TicketThreads, wait_for_ticket_s: float) -> APIRouter:
    router = APIRouter()

    @router.websocket("/v1/channels/chat")
    async def chat(websocket: WebSocket) -> None:
        await websocket.accept()
        conversation = Conversation(websocket, reporter, threads, wait_for_ticket_s)
        try:
            await conversation.run()
        except WebSocketDisconnect:
            pass
        finally:
            conversation.stop()

    return router


class Conversation:
    def __init__(self, websocket: WebSocket, reporter: Reporter, threads: TicketThreads, wait_s: float) -> None:
        self._ws = websocket
        self._reporter = reporter
        self._threads = threads
        self._wait_s = wait_s
        self._number: asyncio.Task[str | None] | None = None

    async def run(self) -> None:
        try:
            start = parse_frame(await self._ws.receive_text(), Start)
        except ChatFrameError as exc:
            CONTACTS.labels("chat", "malformed").inc()
            await self._ws.send_json({"type": "error", "detail": str(exc)})
            await self._ws.close(POLICY_VIOLATION, "the first frame must be a valid 'start' frame")
            return
        assert isinstance(start, Start)
        if not await self._report(
            opening_incident(start, datetime.now(UTC)), {"conversation_id": start.conversation_id}
        ):
            await self._ws.close(1011, "not stored; start again with the same conversation_id")
            return
        key = channel_thread(Channel.CHAT.value, start.conversation_id)
        self._number = asyncio.create_task(self._announce_ticket(key))
        while True:
            raw = await self._ws.receive_text()
            try:
                line = parse_frame(raw, Line)
            except ChatFrameError as exc:
                CONTACTS.labels("chat", "malformed").inc()
                await self._ws.send_json({"type": "error", "detail": str(exc)})
                continue
            assert isinstance(line, Line)
            number = await asyncio.shield(self._number)
            await self._report(reply_incident(start, line, number, datetime.now(UTC)), {"id": line.id})

    async def _announce_ticket(self, key: str) -> str | None:
        number = await self._threads.wait_for_number(key, self._wait_s)
        if number is not None:
            await self._ws.send_json({"type": "ticket", "number": number})
        return number

    async def _report(self, data: IncidentReportedData, answer: dict[str, Any]) -> bool:
        peer = self._ws.client.host if self._ws.client else None
        try:
            await self._reporter.report(data, peer=peer)
        except Flooded:
            await self._ws.send_json(
                {"type": "error", "detail": "too many messages; wait a moment", "retry": True, **answer}
            )
            return False
        except NotAcknowledged:
            await self._ws.send_json({"type": "error", "detail": "not stored; send it again", "retry": True, **answer})
            return False
        await self._ws.send_json({"type": "accepted", **answer})
        return True

    def stop(self) -> None:
        if self._number is not None:
            self._number.cancel()
