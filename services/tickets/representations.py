"""What the ticket API reads and writes: the representations it answers with and the bodies it takes.

Their names are the schema names in the OpenAPI document (docs/tickets-openapi.json),
which the Python client's models (clients/python) are checked against.
"""

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from contracts.commands import AgentId
from contracts.sla import Deadline
from contracts.tickets import LinkKind
from services.tickets.domain import Status


class HistoryEntry(BaseModel):
    event_id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    data: dict[str, Any]


class TicketView(BaseModel):
    ticket_id: uuid.UUID
    number: str
    version: int
    status: Status
    subject: str
    description: str
    channel: str
    channel_message_id: str = Field(description="The channel's own id of the contact that opened the ticket.")
    customer: dict[str, Any] = Field(
        description="The customer as intake identified them (a customer sees only their own contact data)."
    )
    components: list[str]
    priority: int | None = Field(description="1 (business down) to 5; null until routed, and always for customers.")
    queue: str | None = Field(description="The queue it waits in; always null for customers.")
    level: int | None = Field(description="The support level it sits at (1 is first line); null for customers.")
    assignee: str | None = Field(description="The owner; always null for customers.")
    opened_at: datetime
    updated_at: datetime
    resolution: str | None
    resolved_by: str | None = Field(description="Who resolved it; null while unresolved, and always for customers.")
    flags: list[str] = Field(description="Flags raised on the ticket (e.g. sla_warning), sorted; empty for customers.")


class LinkView(BaseModel):
    kind: LinkKind = Field(description="How this ticket relates to the other: this ticket <kind> that one.")
    ticket_id: uuid.UUID
    number: str


class TicketRefView(BaseModel):
    ticket_id: uuid.UUID
    number: str


class AttachmentView(BaseModel):
    """A file the customer sent with a contact: what the channel said of it (the content is not kept here)."""

    filename: str | None
    content_type: str = Field(description="MIME type, e.g. 'image/png'.")
    size_bytes: int | None = Field(description="Size of the decoded content; null when the channel does not say.")
    version: int = Field(description="The history entry that brought it: ticket.opened or a ticket.customer_replied.")
    received_at: datetime = Field(description="When the channel received the contact it came with.")


class TicketDetail(TicketView):
    links: list[LinkView] = Field(description="Links to other tickets (empty for customers).")
    merged_into: TicketRefView | None = Field(
        description="The ticket this one was merged into (status merged); null for customers."
    )
    attachments: list[AttachmentView] = Field(
        description="Every file the customer sent, with the opening contact and with their replies, oldest first."
    )
    history: list[HistoryEntry] = Field(
        description="Every event of the ticket, oldest first (a customer's: the events a customer sees)."
    )


def attachment_views(events: Iterable[BaseModel]) -> list[AttachmentView]:
    """The attachments the ticket's events (their data) carry, oldest first."""
    views = []
    for data in events:
        received_at = getattr(data, "reported_at", None) or getattr(data, "received_at", None)
        for attachment in getattr(data, "attachments", ()):
            views.append(AttachmentView(**attachment.model_dump(), version=data.version, received_at=received_at))
    return views


class TicketList(BaseModel):
    tickets: list[TicketView]
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next page; null on the last page."
    )


class QueueSummary(BaseModel):
    queue: str
    depth: int = Field(description="Tickets waiting in the queue for an agent (open, unclaimed).")
    oldest_opened_at: datetime | None = Field(description="When the longest-waiting ticket was opened.")
    oldest_age_s: float | None = Field(description="How long the longest-waiting ticket has waited, in seconds.")


class QueueList(BaseModel):
    queues: list[QueueSummary]


class TicketDeadlines(BaseModel):
    ticket_id: uuid.UUID
    number: str
    policy: str | None = Field(description="The SLA policy that applies; null until escalation has published one.")
    calendar: str | None = Field(description="The business-hours calendar the deadlines count in.")
    deadlines: list[Deadline]
    as_of: datetime | None = Field(description="When escalation computed these deadlines.")


class Resolution(BaseModel):
    resolution: str = Field(max_length=20_000, description="What was done: the customer is told this.")


class Note(BaseModel):
    text: str = Field(max_length=20_000)
    visibility: Literal["internal", "public"] = Field(
        default="internal",
        description="'public' notes are e-mailed to the customer; 'internal' ones never shown. "
        "A customer's note is always a public reply (recorded as ticket.customer_replied).",
    )


class StatusChange(BaseModel):
    status: Literal["in_progress", "waiting_on_customer", "waiting_on_third_party"]


class PriorityChange(BaseModel):
    priority: int = Field(ge=1, le=5, description="1 is the most urgent.")
    reason: str = Field(max_length=5_000, description="Why routing's priority is overridden (recorded).")


class QueueMove(BaseModel):
    queue: str = Field(min_length=1, max_length=100)
    reason: str = Field(max_length=5_000)


class Assignment(BaseModel):
    agent_id: AgentId = Field(description="The agent to give the ticket to (it is taken from its owner, if any).")
    reason: str = Field(default="", max_length=5_000, description="Why (recorded); empty: 'assigned by <lead>'.")


class Reopening(BaseModel):
    reason: str = Field(max_length=5_000, description="Why the ticket is not done after all.")


class Merge(BaseModel):
    into: str = Field(min_length=1, max_length=100, description="The ticket (id or number) to merge this one into.")
    reason: str = Field(max_length=5_000, description="Why (recorded on both tickets).")


class LinkRequest(BaseModel):
    target: str = Field(min_length=1, max_length=100, description="The other ticket (id or number).")
    kind: LinkKind = Field(description="This ticket <kind> the target; the target records the inverse.")
