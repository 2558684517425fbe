"""What a customer sees of their own ticket: an allow-list, so nothing new leaks by default.

A customer sees the ticket's story as it concerns them: what they reported and
wrote, the desk's public answers, where the ticket stands (open, waiting on
them, resolved, closed, merged) and the resolution. They never see the desk's
inner workings: who works on it, priorities, queues, levels, flags, internal
notes and reasons, links and merges with other (maybe other customers')
tickets, or what the directory says about them beyond their own contact data.

Every event type and every field a customer sees is named here; a field or an
event added to the contracts later stays hidden until it is added below. The
ticket API (``GET /v1/tickets...``) and the live stream both project through
this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The customer's own contact data; not the directory's view of them (vip, department, assets...).
PROFILE_FIELDS = frozenset({"customer_id", "name", "email", "phone", "social_handle", "language"})

_STORY = frozenset({"number", "version"})

# event type -> the fields of its data a customer sees (ticket.note_added: public notes only).
EVENT_FIELDS: dict[str, frozenset[str]] = {
    "ticket.opened": _STORY
    | {
        "channel",
        "reported_at",
        "subject",
        "description",
        "components",
        "impact",
        "urgency",
        "attachments",
        "customer",
    },
    "ticket.customer_replied": _STORY | {"channel", "received_at", "text", "attachments"},
    "ticket.note_added": _STORY | {"text", "visibility", "attachments"},
    "ticket.status_changed": _STORY | {"status", "previous_status"},
    "ticket.resolved": _STORY | {"resolution"},
    "ticket.closed": _STORY,
    "ticket.reopened": _STORY,
    "ticket.merged": _STORY,
}

# The fields of the ticket itself (GET /v1/tickets/{ref}, the list) a customer sees; the others are null or empty.
TICKET_FIELDS = frozenset(
    {
        "ticket_id",
        "number",
        "version",
        "status",
        "subject",
        "description",
        "channel",
        "channel_message_id",
        "customer",
        "components",
        "attachments",
        "opened_at",
        "updated_at",
        "resolution",
    }
)
HIDDEN_TICKET_VALUES: dict[str, Any] = {
    "priority": None,
    "queue": None,
    "level": None,
    "assignee": None,
    "resolved_by": None,
    "flags": [],
    "links": [],
    "merged_into": None,
}

# Filters of the ticket list that would tell a customer the desk's inner workings by count.
INTERNAL_FILTERS = ("queue", "assignee", "priority")


def sees_event(event_type: str, data: Mapping[str, Any] | Any) -> bool:
    """Whether a customer sees this event of their own ticket (``data`` as a model or a dict)."""
    if event_type == "ticket.note_added":
        visibility = data.get("visibility") if isinstance(data, Mapping) else getattr(data, "visibility", None)
        return visibility == "public"
    return event_type in EVENT_FIELDS


def event_data(event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an event's data (as JSON) a customer sees; call only for events :func:`sees_event` admits."""
    shown = {k: v for k, v in data.items() if k in EVENT_FIELDS[event_type]}
    if isinstance(shown.get("customer"), Mapping):
        shown["customer"] = profile(shown["customer"])
    return shown


def profile(customer: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in customer.items() if k in PROFILE_FIELDS}


def ticket(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A ticket's representation (as a dict) as its customer sees it."""
    shown = {k: (v if k in TICKET_FIELDS else HIDDEN_TICKET_VALUES.get(k)) for k, v in fields.items()}
    if isinstance(shown.get("customer"), Mapping):
        shown["customer"] = profile(shown["customer"])
    return shown
