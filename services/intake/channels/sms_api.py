"""``POST /v1/channels/sms/twilio``: the SMS channel, as Twilio's inbound-message webhook.

The signature is checked over the URL Twilio was configured with
(``INTAKE_PUBLIC_URL`` + path, since behind a proxy the URL we see differs)
and the form. The answer is TwiML, given only once the incident is on the
reported topic; Twilio's MessageSid is the channel message id, so a retried
webhook is the same incident.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from runtime.logs import get_logger
from services.intake.api import Rejected, read_limited
from services.intake.channels.twilio import (
    MalformedSms,
    incident_from_sms,
    parse_form,
    signed_by_twilio,
)
from services.intake.config import Settings
from services.intake.reporting import CONTACTS, Flooded, NotAcknowledged, Reporter

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
log = get_logger("intake.sms")


def sms_router(reporter: Reporter, settings: Settings) -> APIRouter:
    router = APIRouter(tags=["channels"])

    @router.post(
        "/v1/channels/sms/twilio",
        summary="Twilio inbound SMS webhook",
        response_class=Response,
        responses={200: {"content": {"text/xml": {}}, "description": "TwiML; the message is stored."}},
    )
    async def inbound_sms(request: Request) -> Response:
        try:
            form = await _signed_form(request, settings)
            data = incident_from_sms(form, datetime.now(UTC))
        except Rejected as rejected:
            outcome = {403: "bad_signature", 413: "too_large"}.get(rejected.status, "malformed")
            CONTACTS.labels("sms", outcome).inc()
            log.warning("sms refused", status=rejected.status, reason=rejected.body["detail"])
            return rejected.response()
        except (MalformedSms, ValidationError) as exc:
            CONTACTS.labels("sms", "malformed").inc()
            return Rejected(400, "Not an inbound message", str(exc)).response()
        try:
            await reporter.report(data)
        except Flooded:
            return Rejected(429, "Too many messages", "this sender is over the flood limit; try later").response()
        except NotAcknowledged:
            unavailable = Rejected(503, "Not accepted", "the message could not be stored; retry")
            unavailable.headers["Retry-After"] = "5"
            return unavailable.response()
        return Response(EMPTY_TWIML, media_type="text/xml")

    return router


async def _signed_form(request: Request, settings: Settings) -> list[tuple[str, str]]:
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    if not token:
        raise Rejected(503, "SMS channel not configured", "set INTAKE_TWILIO_AUTH_TOKEN to receive SMS")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise Rejected(415, "Unsupported media type", "Twilio posts application/x-www-form-urlencoded")
    body = await read_limited(request, settings.max_body_bytes)
    try:
        form = parse_form(body)
    except MalformedSms as exc:
        raise Rejected(400, "Not a form", str(exc)) from None
    url = _signed_url(request, settings.public_url)
    if not signed_by_twilio(token, url, form, request.headers.get("x-twilio-signature", "")):
        raise Rejected(403, "Bad signature", f"X-Twilio-Signature does not match the request to {url}")
    return form


def _signed_url(request: Request, public_url: str | None) -> str:
    if not public_url:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return public_url.rstrip("/") + request.url.path + query
