"""``POST /v1/channels/phone/events``: call events from a telephone/CTI system.

``call.started`` (the caller's number), ``call.ivr`` (what the caller chose),
``call.answered`` (which agent) and ``call.ended`` (how long). The call is
looked up by the caller's number like any contact; it opens a ticket when
answered (or, unanswered, when it ends), and its end is recorded on that
ticket as a reply. Each event may be sent again: nothing happens twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, params
from fastapi.responses import JSONResponse

from contracts.incidents import Channel, IncidentReportedData
from services.intake.adapters.calls import Call, CallBook
from services.intake.adapters.ticket_threads import TicketThreads, channel_thread
from services.intake.api import Rejected, read_limited
from services.intake.channels.cti import (
    CallAnswered,
    CallEnded,
    CallStarted,
    IvrChoices,
    MalformedCallEvent,
    call_ended_reply,
    opening_incident,
    parse_call_event,
)
from services.intake.reporting import CONTACTS, Flooded, NotAcknowledged, Reporter

MAX_EVENT_BYTES = 32 * 1024


def phone_router(
    reporter: Reporter, book: CallBook, threads: TicketThreads, reporting: params.Depends, wait_s: float
) -> APIRouter:
    """``reporting``: the dependency that lets only keys with the report scope post call events."""
    router = APIRouter(tags=["channels"])

    @router.post("/v1/channels/phone/events", status_code=202, summary="A CTI call event", dependencies=[reporting])
    async def call_event(request: Request) -> JSONResponse:
        try:
            event = parse_call_event(await read_limited(request, MAX_EVENT_BYTES))
            return await _apply(event)
        except MalformedCallEvent as exc:
            CONTACTS.labels("phone", "malformed").inc()
            return Rejected(422, "Invalid call event", str(exc)).response()
        except Rejected as rejected:
            return rejected.response()

    async def _apply(event: CallStarted | IvrChoices | CallAnswered | CallEnded) -> JSONResponse:
        now = datetime.now(UTC)
        if isinstance(event, CallStarted):
            if await book.get(event.call_id) is None:
                await book.save(Call(event.call_id, event.caller, event.at or now))
            return _done({"status": "recorded", "call_id": event.call_id})
        call = await book.get(event.call_id)
        if call is None:
            raise Rejected(404, "Unknown call", f"no call.started for call_id {event.call_id!r} yet")
        if isinstance(event, IvrChoices):
            await book.save(call.but(components=tuple(event.components), urgency=event.urgency, impact=event.impact))
            return _done({"status": "recorded", "call_id": call.call_id})
        if isinstance(event, CallAnswered):
            call = call.but(agent_id=event.agent_id)
            await book.save(call)
            return await _report(opening_incident(call, now))
        if call.agent_id is None:  # nobody answered: the missed call is the incident
            return await _report(opening_incident(call, now, abandoned_after_s=event.duration_s))
        number = await threads.wait_for_number(channel_thread(Channel.PHONE.value, call.call_id), wait_s)
        if number is None:
            not_yet = Rejected(503, "Ticket not open yet", "the call's ticket is not open yet; send call.ended again")
            not_yet.headers["Retry-After"] = "5"
            raise not_yet
        return await _report(call_ended_reply(call, event, number, now))

    async def _report(data: IncidentReportedData) -> JSONResponse:
        try:
            await reporter.report(data)
        except Flooded:
            raise Rejected(429, "Too many calls", "this caller is over the flood limit") from None
        except NotAcknowledged:
            unavailable = Rejected(503, "Not accepted", "not stored; send the event again")
            unavailable.headers["Retry-After"] = "5"
            raise unavailable from None
        return _done(
            {
                "status": "accepted",
                "channel_message_id": data.channel_message_id,
                "reply_to_number": data.reply_to_number,
            }
        )

    return router


def _done(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=202)
