"""The social-media channel: Meta's webhook (Messenger, Instagram) and a generic JSON endpoint.

``GET /v1/channels/social/meta`` answers Meta's subscription check;
``POST /v1/channels/social/meta`` takes message events, Instagram mentions
and Facebook Page posts and comments, signed with the app secret.
``POST /v1/channels/social`` takes one message in the documented generic
format from any bridge, with an integration's API key. Each answer comes
once every incident of the request is on the reported topic.

Meta's webhook cannot be refused one contact at a time: a delivery answered
200 is never sent again, and an error makes Meta resend all of it. So a
contact over the flood limit is set aside whole on the dead-letter topic
(replayable) and the delivery is answered 200; the generic endpoint answers
429 and the bridge keeps the message.

A social contact from a sender whose conversation is on a ticket (the last
ticket one of their contacts opened, ``adapters/ticket_threads.py``) is a
reply on that ticket unless it names another: a customer the directory does
not know can answer too (the ticket service takes it when the ticket still
takes replies and its customer has the same handle; else it opens a new one).
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

from fastapi import APIRouter, Request, params, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from contracts.incidents import IncidentReportedData
from services.intake.adapters.ticket_threads import TicketThreads, sender_thread
from services.intake.api import Rejected, read_limited
from services.intake.channels.meta import (
    MalformedSocial,
    incident_from_generic,
    incidents_from_meta,
    signed_by_meta,
)
from services.intake.config import Settings
from services.intake.domain import normalise_handle
from services.intake.reporting import CONTACTS, Flooded, NotAcknowledged, Reporter


def social_router(
    reporter: Reporter, settings: Settings, reporting: params.Depends, threads: TicketThreads
) -> APIRouter:
    """``reporting``: the dependency that lets only keys with the report scope post the generic format."""
    router = APIRouter(tags=["channels"])

    @router.get("/v1/channels/social/meta", summary="Meta webhook subscription check", response_class=PlainTextResponse)
    async def verify(request: Request) -> Response:
        params = request.query_params
        token = settings.meta_verify_token.get_secret_value() if settings.meta_verify_token else ""
        given = params.get("hub.verify_token", "")
        if (
            params.get("hub.mode") != "subscribe"
            or not token
            or not hmac.compare_digest(given.encode(), token.encode())
        ):
            return Rejected(
                403, "Not verified", "hub.mode must be 'subscribe' and hub.verify_token must match"
            ).response()
        return PlainTextResponse(params.get("hub.challenge", ""))

    @router.post("/v1/channels/social/meta", summary="Meta webhook: messages, Instagram mentions, Page posts")
    async def meta_messages(request: Request) -> Response:
        try:
            secret = settings.meta_app_secret.get_secret_value() if settings.meta_app_secret else ""
            if not secret:
                raise Rejected(
                    503, "Social channel not configured", "set INTAKE_META_APP_SECRET to receive Meta webhooks"
                )
            body = await read_limited(request, settings.max_body_bytes)
            if not signed_by_meta(secret, body, request.headers.get("x-hub-signature-256", "")):
                CONTACTS.labels("social", "bad_signature").inc()
                raise Rejected(403, "Bad signature", "X-Hub-Signature-256 does not match the body (app secret)")
            contacts = incidents_from_meta(body, datetime.now(UTC))
        except MalformedSocial as exc:
            CONTACTS.labels("social", "malformed").inc()
            return Rejected(400, "Not a Meta webhook", str(exc)).response()
        except Rejected as rejected:
            return rejected.response()
        return await _report_delivery(reporter, [await _in_conversation(c, threads) for c in contacts])

    @router.post(
        "/v1/channels/social", summary="A social-media message in the generic format", dependencies=[reporting]
    )
    async def generic_message(request: Request) -> Response:
        try:
            data = incident_from_generic(await read_limited(request, settings.max_body_bytes), datetime.now(UTC))
            data = await _in_conversation(data, threads)
        except MalformedSocial as exc:
            CONTACTS.labels("social", "malformed").inc()
            return Rejected(422, "Invalid social message", str(exc)).response()
        except Rejected as rejected:
            return rejected.response()
        try:
            await reporter.report(data)
        except Flooded:
            flooded = Rejected(429, "Too many messages", "this author is over the flood limit; try later")
            flooded.headers["Retry-After"] = str(int(settings.flood_window_s) or 1)
            return flooded.response()
        except NotAcknowledged:
            return _not_stored()
        accepted = {"status": "accepted", "channel_message_id": data.channel_message_id}
        return JSONResponse(accepted, status_code=202)

    return router


async def _in_conversation(data: IncidentReportedData, threads: TicketThreads) -> IncidentReportedData:
    """``data`` as a reply on its sender's conversation, when the sender has one and it names no ticket itself."""
    handle = normalise_handle(data.contact.social_handle)
    if data.reply_to_number is not None or handle is None:
        return data
    number = await threads.number_of_sender(sender_thread(data.channel.value, handle))
    return data.model_copy(update={"reply_to_number": number}) if number else data


async def _report_delivery(reporter: Reporter, contacts: list[IncidentReportedData]) -> Response:
    """200 once every contact of a Meta delivery is on the reported topic or (flooded) set aside; else 503."""
    for data in contacts:
        try:
            await reporter.report_or_set_aside(data, "POST /v1/channels/social/meta")
        except NotAcknowledged:
            return _not_stored()  # Meta resends the whole delivery: the same ids, one incident each
    return PlainTextResponse("EVENT_RECEIVED")


def _not_stored() -> Response:
    unavailable = Rejected(503, "Not accepted", "not stored; the delivery may be retried")
    unavailable.headers["Retry-After"] = "5"
    return unavailable.response()
