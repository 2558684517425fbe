"""Reading Twilio's inbound SMS webhook (pure: form bytes in, incident data out).

Twilio posts ``application/x-www-form-urlencoded`` with ``MessageSid``,
``From``, ``To``, ``Body``, ``NumMedia`` and ``MediaUrl<n>`` /
``MediaContentType<n>``, and signs each request in ``X-Twilio-Signature``:
base64(HMAC-SHA1(auth token, URL + every parameter name and value, sorted by
name)). See https://www.twilio.com/docs/usage/security#validating-requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import parse_qsl

from contracts.incidents import (
    Attachment,
    Channel,
    ContactDetails,
    IncidentReportedData,
)
from services.intake.replies import number_in

Form = Sequence[tuple[str, str]]
MAX_MEDIA = 10
SUBJECT_CHARS = 80


class MalformedSms(ValueError):
    """The request is not a Twilio inbound message; the text says why."""


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """The form's fields in order (a name may repeat); :class:`MalformedSms` if it is not a form."""
    try:
        text = body.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=200)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedSms(f"the body is not an url-encoded form: {exc}") from None


def signature(auth_token: str, url: str, form: Form) -> str:
    """What Twilio puts in ``X-Twilio-Signature`` for a POST of ``form`` to ``url``."""
    signed = url
    for name in sorted({name for name, _ in form}):
        for value in sorted({v for n, v in form if n == name}):
            signed += name + value
    digest = hmac.new(auth_token.encode(), signed.encode("utf-8", "surrogatepass"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_by_twilio(auth_token: str, url: str, form: Form, given: str) -> bool:
    return hmac.compare_digest(signature(auth_token, url, form).encode(), given.strip().encode("utf-8", "replace"))


def incident_from_sms(form: Form, received_at: datetime) -> IncidentReportedData:
    """The incident an inbound SMS reports; a ticket number in the text makes it a reply."""
    fields = dict(form)
    sid, sender = fields.get("MessageSid", "").strip(), fields.get("From", "").strip()
    missing = [name for name, value in (("MessageSid", sid), ("From", sender)) if not value]
    if missing:
        raise MalformedSms(f"missing {', '.join(missing)}")
    if len(sid) > 200 or len(sender) > 64:
        raise MalformedSms("MessageSid or From is too long")
    body = fields.get("Body", "").strip()
    first_line = " ".join(body.splitlines()[0].split()) if body else ""
    subject = first_line[:SUBJECT_CHARS] or f"SMS from {sender}"
    return IncidentReportedData(
        channel=Channel.SMS,
        channel_message_id=sid,
        received_at=received_at,
        contact=ContactDetails(phone=sender),
        subject=subject,
        description=body[:100_000],
        attachments=_media(fields),
        reply_to_number=number_in(body),
    )


def _media(fields: dict[str, str]) -> list[Attachment]:
    count = fields.get("NumMedia", "0")
    n = min(int(count), MAX_MEDIA) if count.isdigit() else 0
    return [
        Attachment(filename=None, content_type=(fields.get(f"MediaContentType{i}") or "application/octet-stream")[:200])
        for i in range(n)
        if fields.get(f"MediaUrl{i}")
    ]
