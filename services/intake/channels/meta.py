"""Reading social-media messages (pure): Meta's Messenger/Instagram webhook, and the generic JSON.

Meta posts ``{"object": "page"|"instagram", "entry": [{"messaging": [...]}]}``
and signs the raw body in ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256
keyed with the app secret>``. Each message event (not our page's own echoes)
is one contact; the sender is ``facebook:<PSID>`` or ``instagram:<IGSID>``,
the social handle the directory knows the customer by. The same deliveries
carry mentions and Page posts as ``entry[].changes``, read in
``meta_changes.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.incidents import (
    Attachment,
    Channel,
    ContactDetails,
    IncidentReportedData,
)
from services.intake.channels.meta_changes import MalformedChange, contacts_from_changes
from services.intake.replies import number_in

PLATFORMS = {"page": "facebook", "instagram": "instagram"}


class MalformedSocial(ValueError):
    """The body is not a message this endpoint takes; the text says why."""


def signed_by_meta(app_secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace"))


def incidents_from_meta(body: bytes, received_at: datetime) -> list[IncidentReportedData]:
    """Every customer message, mention and Page post in a Meta webhook delivery (none for other events)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MalformedSocial(f"the body is not JSON: {type(exc).__name__}") from None
    kind = document.get("object") if isinstance(document, dict) else None
    if not isinstance(kind, str) or kind not in PLATFORMS:
        raise MalformedSocial("expected a Facebook Page or Instagram webhook: object 'page' or 'instagram'")
    platform = PLATFORMS[kind]
    entries = document.get("entry")
    if not isinstance(entries, list):
        raise MalformedSocial("'entry' must be a list")
    contacts: list[IncidentReportedData] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        events = entry.get("messaging")
        for event in events if isinstance(events, list) else []:
            if (data := _message(platform, event, received_at)) is not None:
                contacts.append(data)
        try:
            contacts.extend(contacts_from_changes(platform, entry, received_at))
        except MalformedChange as exc:
            raise MalformedSocial(str(exc)) from None
    return contacts


def _message(platform: str, event: Any, received_at: datetime) -> IncidentReportedData | None:
    if not isinstance(event, dict) or not isinstance(message := event.get("message"), dict) or message.get("is_echo"):
        return None  # deliveries, reads, reactions, and our own page's messages
    sender = event.get("sender", {}).get("id") if isinstance(event.get("sender"), dict) else None
    mid, text = message.get("mid"), message.get("text") or ""
    if not isinstance(sender, str | int) or not isinstance(mid, str) or not isinstance(text, str) or not mid:
        raise MalformedSocial("a message event needs sender.id, message.mid and a text message.text")
    attachments = message.get("attachments") if isinstance(message.get("attachments"), list) else []
    return IncidentReportedData(
        channel=Channel.SOCIAL,
        channel_message_id=mid[:200],
        received_at=received_at,
        contact=ContactDetails(social_handle=f"{platform}:{sender}"[:200]),
        subject=_subject(text, f"{platform.title()} message"),
        description=text[:100_000],
        attachments=[Attachment(content_type=_kind(a)) for a in attachments[:20]],
        reply_to_number=number_in(text),
    )


def _kind(attachment: Any) -> str:
    kind = attachment.get("type") if isinstance(attachment, dict) else None
    return f"{kind}/*"[:200] if isinstance(kind, str) and kind else "application/octet-stream"


def _subject(text: str, fallback: str) -> str:
    first = " ".join(text.splitlines()[0].split()) if text.strip() else ""
    return first[:80] or fallback


class Author(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    handle: str = Field(min_length=1, max_length=200, description="The author's handle, e.g. @ada@mastodon.example.")
    name: str | None = Field(default=None, max_length=200)


class SocialMessage(BaseModel):
    """The generic JSON format: any platform's direct message or mention, from a bridge."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    platform: str = Field(
        min_length=1, max_length=50, pattern=r"^[a-z0-9_.-]+$", description="e.g. mastodon, bluesky, x"
    )
    kind: Literal["direct_message", "mention"]
    message_id: str = Field(min_length=1, max_length=150, description="The platform's id of the post or message.")
    author: Author
    text: str = Field(min_length=1, max_length=100_000)
    url: str | None = Field(default=None, max_length=2000, description="Link to the post, for the agent.")
    sent_at: datetime | None = None


def incident_from_generic(body: bytes, received_at: datetime) -> IncidentReportedData:
    try:
        message = SocialMessage.model_validate_json(body)
    except RecursionError:
        raise MalformedSocial("the body is nested too deeply") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(map(str, first["loc"])) or "body"
        raise MalformedSocial(f"{where}: {first['msg']}") from None
    description = message.text + (f"\n\n{message.url}" if message.url else "")
    return IncidentReportedData(
        channel=Channel.SOCIAL,
        channel_message_id=f"{message.platform}:{message.message_id}",
        received_at=(message.sent_at.astimezone(UTC) if message.sent_at and message.sent_at.tzinfo else received_at),
        contact=ContactDetails(social_handle=message.author.handle, name=message.author.name),
        subject=_subject(message.text, f"{message.platform} {message.kind.replace('_', ' ')}"),
        description=description[:100_000],
        reply_to_number=number_in(message.text),
    )
