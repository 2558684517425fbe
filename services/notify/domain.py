"""What notify sends, decided in plain Python: which e-mail a message asks for, and to whom.

Rendering and sending happen elsewhere; this module only turns a ticket event
or a notification request into an :class:`Email`, or says why there is none.
Every e-mail's key and Message-ID come from the message that caused it, so a
redelivered cause is recognised as already sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from contracts.notifications import NotificationRequested
from contracts.tickets import TicketOpened, TicketResolved

RESOLVED_TEMPLATE = "ticket_resolved"


@dataclass(frozen=True)
class CustomerContact:
    """Who to tell about a ticket, remembered from its opening."""

    ticket_id: uuid.UUID
    number: str
    email: str | None
    name: str | None
    subject: str


@dataclass(frozen=True)
class Email:
    notification_key: str  # at most one e-mail is sent per key
    cause: uuid.UUID  # event_id of the message that asked for it
    method: str
    to: str
    subject: str
    template: str
    context: Mapping[str, str] = field(default_factory=dict)

    @property
    def message_id(self) -> str:
        # Deterministic: a second send after a crash carries the same id, which mail systems drop.
        return f"<{self.notification_key}@helpdesk>"


class NotSupportedYet(Exception):
    """The request asks for a way of notifying that is not built (issue 7)."""


class UnusableRequest(Exception):
    """The request can never be sent as it is (e.g. an e-mail without an address)."""


def contact_from(event: TicketOpened) -> CustomerContact:
    if event.ticket_id is None:
        raise UnusableRequest(f"ticket.opened {event.event_id} carries no ticket_id")
    customer = event.data.customer
    return CustomerContact(
        ticket_id=event.ticket_id,
        number=event.data.number,
        email=customer.email or None,
        name=customer.name,
        subject=event.data.subject,
    )


def resolution_email(event: TicketResolved, contact: CustomerContact | None) -> Email | None:
    """The customer's "your incident is resolved" e-mail; None when no e-mail address is known."""
    if contact is None or not contact.email:
        return None
    return Email(
        notification_key=f"resolved.{event.event_id}",
        cause=event.event_id,
        method="email",
        to=contact.email,
        subject=f"[{event.data.number}] Resolved: {contact.subject}",
        template=RESOLVED_TEMPLATE,
        context={
            "number": event.data.number,
            "subject": contact.subject,
            "customer_name": contact.name or "",
            "resolution": event.data.resolution,
            "resolved_by": event.data.resolved_by,
        },
    )


def requested_email(request: NotificationRequested) -> Email:
    """The e-mail a notification request asks for, or why it cannot be sent."""
    data = request.data
    if data.method != "email":
        raise NotSupportedYet(f"method {data.method} not supported yet")
    if not data.recipient.email:
        who = f"{data.recipient.kind} {data.recipient.id or ''}".strip()
        raise UnusableRequest(f"an e-mail notification to {who} has no e-mail address")
    return Email(
        notification_key=f"request.{request.event_id}",
        cause=request.event_id,
        method=data.method,
        to=data.recipient.email,
        subject=data.subject,
        template=data.template,
        context={**data.context, "number": data.number, "subject": data.subject},
    )
