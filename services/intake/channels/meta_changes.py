"""Mentions and posts in Meta's ``changes`` webhooks (pure): Instagram ``mentions``, Facebook Page ``feed``.

Besides direct messages (``entry[].messaging``), Meta delivers changes to
what a business account subscribed to as
``{"object": ..., "entry": [{"id": <our account>, "time": ..., "changes":
[{"field": ..., "value": {...}}]}]}``, signed like every delivery. Two of
them are customers talking to us in public:

* Instagram ``mentions``: someone @mentioned the business account in a
  comment (``{"media_id", "comment_id"}``) or a caption (``{"media_id"}``).
  Meta sends only the ids: who wrote it and what it says must be fetched
  with the Graph API. The incident records the ids so an agent can open the
  post; a sender (``from``) and ``text`` are used when a delivery has them.
* Facebook Page ``feed``: a post on the Page or a comment under one
  (``item`` ``post``/``status``/``photo``/``video``/``comment``, ``verb``
  ``add``), with ``from`` and ``message``. Edits, removals, reactions and
  the Page's own posts are not contacts.

Each is one incident, its channel message id made of Meta's ids, so Meta
redelivering it (or delivering the same comment again) is one incident. One
without a sender is not flood-guarded (``flood.py``): a post many people
mention or comment on must not have the 31st of them set aside.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contracts.incidents import Channel, ContactDetails, IncidentReportedData
from services.intake.replies import number_in

FEED_ITEMS = frozenset({"post", "status", "photo", "video", "comment"})


class MalformedChange(ValueError):
    """A change this endpoint takes, missing what it needs; the text says which."""


def contacts_from_changes(platform: str, entry: dict[str, Any], received_at: datetime) -> list[IncidentReportedData]:
    """Every mention or customer post among one entry's changes (other fields are not contacts)."""
    changes = entry.get("changes")
    contacts = []
    for change in changes if isinstance(changes, list) else []:
        if not isinstance(change, dict) or not isinstance(value := change.get("value"), dict):
            continue
        field = change.get("field")
        if platform == "instagram" and field == "mentions":
            contacts.append(_instagram_mention(value, received_at))
        elif platform == "facebook" and field == "feed" and (post := _feed_post(value, entry, received_at)):
            contacts.append(post)
    return contacts


def _instagram_mention(value: dict[str, Any], received_at: datetime) -> IncidentReportedData:
    media_id, comment_id = (
        _meta_id(value.get("media_id")),
        _meta_id(value.get("comment_id")),
    )
    if media_id is None:
        raise MalformedChange("an Instagram mention needs value.media_id")
    author = value.get("from") if isinstance(value.get("from"), dict) else {}
    sender_id, username = _meta_id(author.get("id")), _text(author.get("username"))
    text = _text(value.get("text")) or ""
    where = f"comment {comment_id} on media {media_id}" if comment_id else f"the caption of media {media_id}"
    lookup = (
        f"GET /<ig-user-id>?fields=mentioned_comment.comment_id({comment_id})"
        if comment_id
        else f"GET /<ig-user-id>?fields=mentioned_media.media_id({media_id})"
    )
    note = f"Instagram mention of the business account in {where}."
    if not text:
        note += f" Meta sent only the ids: read the mention with the Graph API ({lookup}) or open it on Instagram."
    handle = f"instagram:{sender_id}" if sender_id else (f"@{username}"[:200] if username else None)
    return IncidentReportedData(
        channel=Channel.SOCIAL,
        channel_message_id=f"instagram:{'comment' if comment_id else 'media'}:{comment_id or media_id}"[:200],
        received_at=received_at,
        contact=ContactDetails(social_handle=handle, name=f"@{username}"[:200] if username else None),
        subject=_subject(
            text,
            "Instagram mention" + (" in a comment" if comment_id else " in a caption"),
        ),
        description=(f"{text}\n\n{note}" if text else note)[:100_000],
        reply_to_number=number_in(text),
    )


def _feed_post(value: dict[str, Any], entry: dict[str, Any], received_at: datetime) -> IncidentReportedData | None:
    item, verb = value.get("item"), value.get("verb")
    if not isinstance(item, str) or item not in FEED_ITEMS or verb != "add":
        return None  # edits, removals, reactions, shares: not a new contact
    author = value.get("from") if isinstance(value.get("from"), dict) else {}
    sender_id, name = _meta_id(author.get("id")), _text(author.get("name"))
    if sender_id is not None and sender_id == _meta_id(entry.get("id")):
        return None  # the Page's own post or answer
    post_id, comment_id = (
        _meta_id(value.get("post_id")),
        _meta_id(value.get("comment_id")),
    )
    if post_id is None or (item == "comment" and comment_id is None):
        raise MalformedChange("a Page feed change needs value.post_id (and value.comment_id for a comment)")
    text = _text(value.get("message")) or ""
    kind = "comment" if item == "comment" else "post"
    note = f"Facebook Page {kind}: post {post_id}" + (f", comment {comment_id}" if item == "comment" else "")
    note += f" (https://www.facebook.com/{post_id})."
    return IncidentReportedData(
        channel=Channel.SOCIAL,
        channel_message_id=f"facebook:{kind}:{comment_id if item == 'comment' else post_id}"[:200],
        received_at=received_at,
        contact=ContactDetails(
            social_handle=f"facebook:{sender_id}" if sender_id else None,
            name=name and name[:200],
        ),
        subject=_subject(text, f"Facebook Page {kind}"),
        description=(f"{text}\n\n{note}" if text else note)[:100_000],
        reply_to_number=number_in(text),
    )


def _meta_id(value: Any) -> str | None:
    """Meta's ids are numeric strings (sometimes numbers); anything else is no id."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text[:150] or None


def _text(value: Any) -> str | None:
    return (value.strip()[:100_000] or None) if isinstance(value, str) else None


def _subject(text: str, fallback: str) -> str:
    first = " ".join(text.splitlines()[0].split()) if text.strip() else ""
    return first[:80] or fallback
