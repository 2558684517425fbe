"""What notify sends, decided in plain Python: which notifications a message asks for, and to whom.

Rendering and sending happen elsewhere; this module only turns a ticket event
or a notification request into :class:`Notification` values, or says why there
is none. Every notification's key comes from the message that caused it (and,
when one cause notifies several people, from the method and address too), so a
redelivered cause is recognised as already sent. E-mail Message-IDs carry the
ticket number, which is how intake threads a customer's reply back.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts.notifications import NotificationRequested
from contracts.tickets import TicketMerged, TicketOpened, TicketResolved

ACKNOWLEDGED_TEMPLATE = "ticket_opened"
RESOLVED_TEMPLATE = "ticket_resolved"
NOTE_TEMPLATE = "ticket_note_added"
MERGED_TEMPLATE = "ticket_merged"
EMAIL_CHANNEL = "email"


@dataclass(frozen=True)
class CustomerContact:
    """Who to tell about a ticket, remembered from its opening."""

    ticket_id: uuid.UUID
    number: str
    email: str | None
    name: str | None
    subject: str
    language: str | None = None
    # The Message-ID our e-mails to the customer answer: the customer's own first mail, when the
    # ticket came in by e-mail, so their mail client shows one conversation.
    thread_root: str | None = None


@dataclass(frozen=True)
class Notification:
    notification_key: str  # at most one notification is sent per key
    cause: uuid.UUID  # event_id of the message that asked for it
    method: str  # email, sms, phone, pager, alarm, flag, webhook
    to: str  # the address in the method's terms: e-mail, E.164 number, routing key, URL...
    subject: str
    template: str
    context: Mapping[str, str] = field(default_factory=dict)
    ticket_id: uuid.UUID | None = None
    language: str | None = None
    thread: tuple[str, ...] = ()  # Message-IDs this e-mail follows, the first message first
    correlation_id: str | None = None
    payload: Mapping[str, Any] | None = None  # the event itself, for webhooks

    @property
    def number(self) -> str | None:
        return self.context.get("number")

    @property
    def message_id(self) -> str:
        # Deterministic: a second send after a crash carries the same id, which mail systems drop.
        # The number in it lets intake thread a reply that changed the subject.
        suffix = f".{self.number}" if self.number else ""
        return f"<{self.notification_key}{suffix}@helpdesk>"


Email = Notification  # the name the e-mail-only notify used


class NotSupported(Exception):
    """The request asks for a way of notifying that notify does not know."""


class UnusableRequest(Exception):
    """The request can never be sent as it is (e.g. an e-mail without an address)."""


def contact_from(event: TicketOpened) -> CustomerContact:
    if event.ticket_id is None:
        raise UnusableRequest(f"ticket.opened {event.event_id} carries no ticket_id")
    data = event.data
    customer = data.customer
    root = data.channel_message_id if data.channel.value == EMAIL_CHANNEL and data.channel_message_id.startswith("<") else None
    return CustomerContact(
        ticket_id=event.ticket_id,
        number=data.number,
        email=customer.email or None,
        name=customer.name,
        subject=data.subject,
        language=customer.language,
        thread_root=root,
    )


def _customer_email(
    contact: CustomerContact, *, key: str, cause: uuid.UUID, subject: str, template: str, context: dict[str, str],
    correlation_id: str | None,
) -> Notification:
    assert contact.email
    return Notification(
        notification_key=key,
        cause=cause,
        method="email",
        to=contact.email,
        subject=subject,
        template=template,
        context={"number": contact.number, "subject": contact.subject, "customer_name": contact.name or "", **context},
        ticket_id=contact.ticket_id,
        language=contact.language,
        thread=(contact.thread_root,) if contact.thread_root else (),
        correlation_id=correlation_id,
    )


def acknowledgement_email(event: TicketOpened, contact: CustomerContact, reply_to: str) -> Notification | None:
    """"We have your request HD-12": the number, and how to add to it by replying."""
    if not contact.email:
        return None
    return _customer_email(
        contact, key=f"opened.{event.event_id}", cause=event.event_id,
        subject=f"[{contact.number}] Received: {contact.subject}", template=ACKNOWLEDGED_TEMPLATE,
        context={"reply_to": reply_to, "channel": event.data.channel.value}, correlation_id=event.correlation_id,
    )


def resolution_email(event: TicketResolved, contact: CustomerContact | None) -> Notification | None:
    """The customer's "your incident is resolved" e-mail; None when no e-mail address is known."""
    if contact is None or not contact.email:
        return None
    return _customer_email(
        contact, key=f"resolved.{event.event_id}", cause=event.event_id,
        subject=f"[{event.data.number}] Resolved: {contact.subject}", template=RESOLVED_TEMPLATE,
        context={"number": event.data.number, "resolution": event.data.resolution,
                 "resolved_by": event.data.resolved_by},
        correlation_id=event.correlation_id,
    )


def merged_email(event: TicketMerged, contact: CustomerContact | None) -> Notification | None:
    """"HD-5 is joined to HD-3": the work goes on there (the merge's reason is the desk's, not said)."""
    if contact is None or not contact.email:
        return None
    return _customer_email(
        contact, key=f"merged.{event.event_id}", cause=event.event_id,
        subject=f"[{event.data.number}] Joined to {event.data.into_number}: {contact.subject}",
        template=MERGED_TEMPLATE, context={"number": event.data.number, "into_number": event.data.into_number},
        correlation_id=event.correlation_id,
    )


def public_note(event: Any) -> tuple[str, str] | None:
    """(author, text) of a ``ticket.note_added`` event the customer may see; None for internal notes.

    Read defensively: the note event's contract comes with the ticket service's notes.
    """
    if getattr(event, "type", None) != "ticket.note_added":
        return None
    data = event.data
    if getattr(data, "visibility", None) != "public":
        return None
    text = getattr(data, "text", None) or getattr(data, "body", None)
    if not text:
        return None
    return str(getattr(data, "author", None) or getattr(data, "by", None) or ""), str(text)


def note_email(event: Any, contact: CustomerContact | None) -> Notification | None:
    """The customer's copy of a public note; None for an internal one or without an address."""
    note = public_note(event)
    if note is None or contact is None or not contact.email:
        return None
    author, text = note
    return _customer_email(
        contact, key=f"note.{event.event_id}", cause=event.event_id,
        subject=f"[{contact.number}] Update: {contact.subject}", template=NOTE_TEMPLATE,
        context={"note": text, "author": author}, correlation_id=event.correlation_id,
    )


def requested_notification(request: NotificationRequested, address: str | None) -> Notification:
    """The notification a request asks for, sent to ``address`` (the request's own, or the
    recipient's preferences), or why it cannot be sent."""
    data = request.data
    who = f"{data.recipient.kind} {data.recipient.id or ''}".strip()
    if data.method == "email" and not address:
        raise UnusableRequest(f"an e-mail notification to {who} has no e-mail address")
    if data.method in ("sms", "phone") and not address:
        raise UnusableRequest(f"an {data.method} notification to {who} has no phone number")
    if data.method == "pager" and not address:
        raise UnusableRequest(f"a pager notification to {who} has no pager route in the recipients file")
    if data.method == "flag" and request.ticket_id is None:
        raise UnusableRequest(f"a flag notification to {who} names no ticket (ticket_id)")
    return Notification(
        notification_key=f"request.{request.event_id}",
        cause=request.event_id,
        method=data.method,
        to=address or "",
        subject=data.subject,
        template=data.template,
        context={**data.context, "number": data.number, "subject": data.subject},
        ticket_id=request.ticket_id,
        correlation_id=request.correlation_id,
    )


def request_address(request: NotificationRequested) -> str | None:
    """The address the request itself carries for its method."""
    recipient, method = request.data.recipient, request.data.method
    if method == "email":
        return recipient.email
    if method in ("sms", "phone"):
        return recipient.phone
    return None


def fan_out(base_key: str, cause: uuid.UUID, routes: list[tuple[str, str]], **fields: Any) -> list[Notification]:
    """One notification per (method, address): the key names both, so each is sent once."""
    return [
        Notification(notification_key=f"{base_key}.{method}.{to}"[:200], cause=cause, method=method, to=to, **fields)
        for method, to in routes
    ]


def flag_command_id(notification: Notification) -> uuid.UUID:
    """The flag command's id, from the notification key: a resend is the same command."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"helpdesk:notify:flag:{notification.notification_key}")
