"""What the ticket API answers, as typed models.

They mirror the ticket service's OpenAPI document (a test keeps them in step)
but ignore fields they do not know, so this client keeps working against a
newer server that added some. Statuses and event types are plain strings for
the same reason: a server may learn a new one (``merged``) before the client.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HistoryEntry(ApiModel):
    """One event in a ticket's timeline (``ticket.claimed``, ``ticket.note_added``...)."""

    event_id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    data: dict[str, Any]


TimelineEvent = HistoryEntry


class TicketLink(ApiModel):
    kind: str = Field(description="relates_to, duplicate_of, parent_of, child_of, caused_by or causes.")
    ticket_id: uuid.UUID
    number: str


class MergedInto(ApiModel):
    ticket_id: uuid.UUID
    number: str


class TicketView(ApiModel):
    ticket_id: uuid.UUID
    number: str
    version: int
    status: str
    subject: str
    description: str
    channel: str
    channel_message_id: str
    customer: dict[str, Any]
    components: list[str]
    priority: int | None
    queue: str | None
    level: int | None = Field(description="Null for customers.")
    assignee: str | None
    opened_at: datetime
    updated_at: datetime
    resolution: str | None
    resolved_by: str | None
    flags: list[str] = []


class Attachment(ApiModel):
    """A file the customer sent with a contact (what the channel said of it; the content is not in the API)."""

    filename: str | None = None
    content_type: str
    size_bytes: int | None = None
    version: int = Field(description="The history entry that brought it (ticket.opened or a customer reply).")
    received_at: datetime


class TicketDetail(TicketView):
    # Added with merging and linking: empty on older servers.
    links: list[TicketLink] = []
    merged_into: MergedInto | None = None
    # Added with attachments: empty on older servers.
    attachments: list[Attachment] = []
    history: list[HistoryEntry]


Ticket = TicketDetail


class TicketList(ApiModel):
    tickets: list[TicketView]
    next_cursor: str | None = None


class QueueSummary(ApiModel):
    queue: str
    depth: int
    oldest_opened_at: datetime | None
    oldest_age_s: float | None


class QueueList(ApiModel):
    queues: list[QueueSummary]


class Deadline(ApiModel):
    kind: str
    level: int | None = None
    due_at: datetime | None
    remaining_s: float | None = None
    warn_at: datetime | None = None
    state: str
    met_at: datetime | None = None
    breached_at: datetime | None = None


class TicketDeadlines(ApiModel):
    ticket_id: uuid.UUID
    number: str
    policy: str | None
    calendar: str | None
    deadlines: list[Deadline]
    as_of: datetime | None


class Problem(ApiModel):
    """An RFC 7807 error body; ``extensions`` keeps the members beyond the standard ones (rule, errors...)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = "about:blank"
    title: str = ""
    status: int = 0
    detail: str = ""

    @property
    def slug(self) -> str:
        """The last part of the type: ``stale-version`` for ``urn:helpdesk:problem:stale-version``."""
        return self.type.rsplit(":", 1)[-1]

    @property
    def extensions(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class StreamEvent(ApiModel):
    """One event of the live stream: a ticket event and its position in the service's log."""

    id: str | None = Field(description="The log position; resume after it with last_event_id.")
    type: str
    data: dict[str, Any] = Field(description="The ticket event's envelope, as relayed to Kafka.")

    @property
    def ticket_id(self) -> str | None:
        return self.data.get("ticket_id")

    @property
    def number(self) -> str | None:
        payload = self.data.get("data")
        return payload.get("number") if isinstance(payload, dict) else None
