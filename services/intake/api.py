"""``POST /v1/incidents``: the web/API and mobile channel.

The request is validated, put on the reported topic, and answered 202 only
once Kafka has acknowledged it: from then on the incident cannot be lost.
Identification happens in the consumer (``handlers.py``), exactly as for an
incident an integration publishes straight onto the topic.

A client that did not get an answer posts again with the same
``channel_message_id`` (or ``Idempotency-Key``); the report gets the same
event id and the ticket service opens one ticket.

Integrations authenticate with their own API keys (``api_keys.py``), with
the ``report`` scope.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contracts.envelope import new_envelope
from contracts.incidents import (
    Channel,
    ContactDetails,
    IncidentReported,
    IncidentReportedData,
    LanguageTag,
    Level,
)
from contracts.topics import INCIDENTS_REPORTED
from runtime.kafka import Publisher
from runtime.logs import get_logger
from services.intake.config import Settings
from services.intake.domain import reported_event_id
from services.intake.flood import FloodGuard, sender_of
from services.intake.reporting import FLOODED

HTTP_INCIDENTS = Counter(
    "helpdesk_intake_http_incidents_total",
    "Incidents posted to POST /v1/incidents, by channel and outcome (accepted, invalid, too_large, flooded, unavailable).",
    ["channel", "outcome"],
)
PROBLEM = "application/problem+json"
MAX_HEADER_ID = 200
log = get_logger("intake.api")


class IncidentSubmission(BaseModel):
    """An incident as a client posts it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: Channel = Field(default=Channel.WEB, description="The channel the customer used.")
    channel_message_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Your id of this contact (or send Idempotency-Key); posting it again opens no second ticket.",
    )
    contact: ContactDetails = Field(
        description="How the customer identified themselves: at least one of user_id, email, phone, social_handle."
    )
    subject: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=100_000)
    components: list[str] = Field(default_factory=list, max_length=50, description="Components involved.")
    impact: Level | None = None
    urgency: Level | None = None
    reply_to_number: str | None = Field(
        default=None,
        pattern=r"^HD-[0-9]{1,12}$",
        description="The ticket this contact answers (HD-12); recorded on it as a customer reply when it is open.",
    )
    contact_verified: bool = Field(
        default=True,
        description=(
            "false when you cannot vouch for who the contact is (a public form, no sign-in): the customer is then "
            "not identified by it; the contact is kept as unverified contact data for the agent."
        ),
    )
    language: LanguageTag = Field(
        default=None, max_length=35, description="The language the customer chose (BCP 47, e.g. 'de', 'fr-CH')."
    )

    @field_validator("contact")
    @classmethod
    def _someone_to_answer(cls, c: ContactDetails) -> ContactDetails:
        if not any(v and v.strip() for v in (c.user_id, c.email, c.phone, c.social_handle)):
            raise ValueError("give at least one of user_id, email, phone, social_handle")
        return c


class Accepted(BaseModel):
    status: str = "accepted"
    channel_message_id: str
    correlation_id: str


class Rejected(Exception):
    """The request cannot be accepted; carries the problem+json answer."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
        self.headers: dict[str, str] = {}

    @classmethod
    def invalid(cls, errors: list[dict[str, str]]) -> Rejected:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return cls(422, "Invalid incident", detail, errors=errors)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, media_type=PROBLEM, headers=self.headers)


def incidents_router(publisher: Publisher, settings: Settings, guard: FloodGuard) -> APIRouter:
    router = APIRouter(tags=["incidents"])

    @router.post("/v1/incidents", status_code=202, response_model=Accepted, **_OPENAPI)
    async def report_incident(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, settings.max_body_bytes)
            reported = _reported(_parse(body), request)
        except Rejected as rejected:
            HTTP_INCIDENTS.labels("unknown", "too_large" if rejected.status == 413 else "invalid").inc()
            return rejected.response()
        channel = reported.data.channel.value
        message_id = reported.data.channel_message_id
        peer = request.client.host if request.client else None
        sender = sender_of(channel, reported.data.contact, verified=reported.data.contact_verified, peer=peer)
        if not guard.admit(sender):
            HTTP_INCIDENTS.labels(channel, "flooded").inc()
            FLOODED.labels(channel, "http").inc()
            flooded = Rejected(429, "Too many incidents", "this sender is over the flood limit; try later")
            flooded.headers["Retry-After"] = str(int(settings.flood_window_s) or 1)
            return flooded.response()
        try:
            publishing = publisher.publish(INCIDENTS_REPORTED, reported, reported.data.partition_key)
            await asyncio.wait_for(publishing, settings.publish_timeout_s)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the contact was not acknowledged
            HTTP_INCIDENTS.labels(channel, "unavailable").inc()
            log.error("incident not acknowledged by Kafka", error=f"{type(exc).__name__}: {exc}")
            unavailable = Rejected(
                503,
                "Not accepted",
                "the incident could not be stored; post it again with this channel_message_id",
                channel_message_id=message_id,
            )
            unavailable.headers["Retry-After"] = "5"
            return unavailable.response()
        HTTP_INCIDENTS.labels(channel, "accepted").inc()
        log.info(
            "incident accepted", correlation_id=reported.correlation_id, channel=channel, channel_message_id=message_id
        )
        accepted = Accepted(channel_message_id=message_id, correlation_id=reported.correlation_id)
        return JSONResponse(accepted.model_dump(), status_code=202)

    return router


async def _read_body(request: Request, limit: int) -> bytes:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise Rejected(415, "Unsupported media type", f"send the incident as application/json, not {content_type}")
    return await read_limited(request, limit)


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, or 413 as soon as it exceeds ``limit`` bytes (whatever Content-Length claims)."""
    too_large = Rejected(413, "Body too large", f"an incident body may be at most {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:  # a lying or absent Content-Length: stop reading
            raise too_large
    return bytes(body)


def _parse(body: bytes) -> IncidentSubmission:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise Rejected(400, "Body is not JSON", f"the body is not valid JSON: {exc}") from None
    try:
        return IncidentSubmission.model_validate(document)
    except ValidationError as exc:
        raise Rejected.invalid([_field_error(err) for err in exc.errors(include_url=False)]) from None


def _reported(submission: IncidentSubmission, request: Request) -> IncidentReported:
    """The incident.reported message for ``submission``; its event id follows from channel and message id."""
    key = request.headers.get("idempotency-key", "").strip() or None
    correlation_id = request.headers.get("x-correlation-id", "").strip() or None
    errors = []
    if key is not None and len(key) > MAX_HEADER_ID:
        errors.append({"field": "Idempotency-Key", "message": f"at most {MAX_HEADER_ID} characters"})
    if key and submission.channel_message_id and key != submission.channel_message_id:
        errors.append({"field": "Idempotency-Key", "message": "differs from channel_message_id in the body"})
    if correlation_id is not None and len(correlation_id) > MAX_HEADER_ID:
        errors.append({"field": "X-Correlation-ID", "message": f"at most {MAX_HEADER_ID} characters"})
    if errors:
        raise Rejected.invalid(errors)
    message_id = submission.channel_message_id or key or str(uuid.uuid4())
    data = IncidentReportedData(
        channel=submission.channel,
        channel_message_id=message_id,
        received_at=datetime.now(UTC),
        **submission.model_dump(
            include={
                "contact", "subject", "description", "components", "impact", "urgency", "reply_to_number",
                "contact_verified", "language",
            }
        ),
    )
    event_id = reported_event_id(submission.channel.value, message_id)
    message = new_envelope(IncidentReported, data, event_id=event_id, correlation_id=correlation_id)
    return cast(IncidentReported, message)


def _field_error(err: Any) -> dict[str, str]:
    field = ".".join(str(p) for p in err["loc"]) or "(body)"
    return {"field": field, "message": err["msg"].removeprefix("Value error, ")}


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with ``$defs`` inlined: in an operation, refs would resolve from the document root."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return cast(dict[str, Any], resolve(schema))


def _header(name: str, description: str) -> dict[str, Any]:
    schema = {"type": "string", "maxLength": MAX_HEADER_ID}
    return {"name": name, "in": "header", "required": False, "schema": schema, "description": description}


# The body is read by hand (for the size limit and problem+json errors), so its schema is declared here.
_OPENAPI: dict[str, Any] = {
    "summary": "Report an incident",
    "responses": {
        400: {"description": "The body is not JSON.", "content": {PROBLEM: {}}},
        413: {"description": "The body is too large.", "content": {PROBLEM: {}}},
        415: {"description": "The body is not sent as JSON.", "content": {PROBLEM: {}}},
        401: {"description": "No or unknown API key.", "content": {PROBLEM: {}}},
        403: {"description": "The key's integration has no report scope.", "content": {PROBLEM: {}}},
        422: {"description": "A field is wrong; `errors` says which.", "content": {PROBLEM: {}}},
        429: {"description": "The sender is over the flood limit.", "content": {PROBLEM: {}}},
        503: {"description": "Not acknowledged: post again with the same id.", "content": {PROBLEM: {}}},
    },
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline_schema(IncidentSubmission)}},
        },
        "parameters": [
            _header("Idempotency-Key", "Used as channel_message_id when the body has none."),
            _header("X-Correlation-ID", "Your trace id; carried by every message this incident causes."),
        ],
    },
}
