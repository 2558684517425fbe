"""Ticket events: the facts of the ticket service's log, as published on the events topic.

Every event carries the ticket's human number and the version the event has
in the ticket's stream (1 for ``ticket.opened``), so a consumer can tell the
order of one ticket's events and spot a gap.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from contracts.envelope import Envelope, Payload
from contracts.incidents import Attachment, Channel, CustomerProfile

Priority = Literal[1, 2, 3, 4, 5]


class TicketEventData(Payload):
    number: str = Field(description="Human-friendly ticket number, e.g. HD-1042.")
    version: int = Field(ge=1, description="Position of this event in the ticket's own stream.")


def attachments_field() -> Any:
    """What the channel's contact carried besides text: the metadata intake parsed (the content stays out of Kafka)."""
    return Field(
        default_factory=list,
        max_length=100,
        # Left out of the message when there are none: a contact without files reads as it always did.
        exclude_if=lambda attachments: not attachments,
        description="Files that came with the contact (metadata only: filename, content type, size).",
    )


class TicketOpenedData(TicketEventData):
    channel: Channel
    channel_message_id: str
    reported_at: AwareDatetime = Field(description="Time of call: when the channel received the contact.")
    subject: str
    description: str
    components: list[str] = Field(default_factory=list)
    impact: Literal["high", "medium", "low"] | None = None
    urgency: Literal["high", "medium", "low"] | None = None
    customer: CustomerProfile
    attachments: list[Attachment] = attachments_field()


class TicketOpened(Envelope[TicketOpenedData]):
    type: Literal["ticket.opened"] = "ticket.opened"
    schema_version: Literal[1] = 1


class TicketPrioritisedData(TicketEventData):
    priority: Priority
    rule: str = Field(description="Name of the rule (or 'manual') that set the priority.")
    reason: str
    by: str = Field(description="'routing' for an automatic decision, else the agent id.")


class TicketPrioritised(Envelope[TicketPrioritisedData]):
    type: Literal["ticket.prioritised"] = "ticket.prioritised"
    schema_version: Literal[1] = 1


class TicketRoutedData(TicketEventData):
    queue: str
    rule: str
    reason: str


class TicketRouted(Envelope[TicketRoutedData]):
    type: Literal["ticket.routed"] = "ticket.routed"
    schema_version: Literal[1] = 1


class TicketClaimedData(TicketEventData):
    agent_id: str = Field(description="Taken from the agent's credential, never from the request body.")


class TicketClaimed(Envelope[TicketClaimedData]):
    type: Literal["ticket.claimed"] = "ticket.claimed"
    schema_version: Literal[1] = 1


class TicketResolvedData(TicketEventData):
    resolution: str = Field(min_length=1)
    resolved_by: str


class TicketResolved(Envelope[TicketResolvedData]):
    type: Literal["ticket.resolved"] = "ticket.resolved"
    schema_version: Literal[1] = 1


class TicketEscalatedData(TicketEventData):
    level: int = Field(ge=1, description="The support level the ticket now sits at (1 is first line).")
    queue: str = Field(description="The level's queue the ticket moved to.")
    reason: str


class TicketEscalated(Envelope[TicketEscalatedData]):
    type: Literal["ticket.escalated"] = "ticket.escalated"
    schema_version: Literal[1] = 1


class TicketAssignedData(TicketEventData):
    agent_id: str = Field(description="The agent the ticket was given to (not taken by).")
    strategy: Literal["round_robin", "least_loaded", "direct"]
    reason: str
    assigned_by: str | None = Field(
        default=None,
        # Left out when routing or escalation assigned it: their assignments read as they always did.
        exclude_if=lambda lead: lead is None,
        description="The team lead who gave it to the agent by hand (strategy 'direct'); absent for routing's "
        "and escalation's assignments.",
    )


class TicketAssigned(Envelope[TicketAssignedData]):
    """The ticket was given to an agent: by routing (queues with an assignment strategy other than pull), by
    escalation (a level's on-call agent), or by a team lead, who may also take it from its owner and give it to
    another (the status stays: a ticket waiting on the customer still waits)."""

    type: Literal["ticket.assigned"] = "ticket.assigned"
    schema_version: Literal[1] = 1


class TicketFlaggedData(TicketEventData):
    flag: str = Field(min_length=1, max_length=50, description="e.g. 'escalated', 'sla_warning'.")
    reason: str
    raised_by: str = Field(description="The service or agent that raised the flag.")


class TicketFlagged(Envelope[TicketFlaggedData]):
    type: Literal["ticket.flagged"] = "ticket.flagged"
    schema_version: Literal[1] = 1


class TicketCustomerRepliedData(TicketEventData):
    channel: Channel
    channel_message_id: str
    received_at: AwareDatetime
    text: str = Field(max_length=100_000)
    attachments: list[Attachment] = attachments_field()


class TicketCustomerReplied(Envelope[TicketCustomerRepliedData]):
    """The customer answered on some channel; the reply is attached to the open ticket."""

    type: Literal["ticket.customer_replied"] = "ticket.customer_replied"
    schema_version: Literal[1] = 1


class TicketReleasedData(TicketEventData):
    released_by: str = Field(description="The owner, or a lead, who put the ticket back in its queue.")
    previous_assignee: str


class TicketReleased(Envelope[TicketReleasedData]):
    """The ticket went back to its queue, open and with no assignee."""

    type: Literal["ticket.released"] = "ticket.released"
    schema_version: Literal[1] = 1


class TicketNoteAddedData(TicketEventData):
    text: str = Field(min_length=1, max_length=20_000)
    visibility: Literal["internal", "public"] = Field(description="'public' notes are sent to the customer.")
    author: str = Field(description="The agent who wrote it (from the credential).")


class TicketNoteAdded(Envelope[TicketNoteAddedData]):
    type: Literal["ticket.note_added"] = "ticket.note_added"
    schema_version: Literal[1] = 1


class TicketStatusChangedData(TicketEventData):
    status: Literal["in_progress", "waiting_on_customer", "waiting_on_third_party"]
    previous_status: str
    by: str = Field(description="The agent who set it, or 'customer' when the customer's reply ended a wait.")
    reason: str | None = Field(
        default=None,
        max_length=5_000,
        # Left out of the message when there is none: what an agent sets reads as it always did.
        exclude_if=lambda reason: reason is None,
        description="Why, when the desk changed it by itself (e.g. 'the customer replied by email').",
    )


class TicketStatusChanged(Envelope[TicketStatusChangedData]):
    """The owner (or a lead) says what the ticket is waiting for; waiting statuses pause SLA clocks.

    A customer's reply ends a wait (on the customer or on a third party): the ticket goes back to
    ``in_progress``, recorded with the reply, by ``customer``.
    """

    type: Literal["ticket.status_changed"] = "ticket.status_changed"
    schema_version: Literal[1] = 1


class TicketClosedData(TicketEventData):
    closed_by: str


class TicketClosed(Envelope[TicketClosedData]):
    """A resolved ticket is closed: it takes no more replies and reopens only within the reopen window."""

    type: Literal["ticket.closed"] = "ticket.closed"
    schema_version: Literal[1] = 1


class TicketReopenedData(TicketEventData):
    reason: str = Field(min_length=1, max_length=5_000)
    reopened_by: str


class TicketReopened(Envelope[TicketReopenedData]):
    """A resolved or closed ticket is open again (back to its owner if it has one, else to its queue)."""

    type: Literal["ticket.reopened"] = "ticket.reopened"
    schema_version: Literal[1] = 1


LinkKind = Literal["relates_to", "duplicate_of", "duplicated_by", "parent_of", "child_of", "caused_by", "causes"]
"""How one ticket relates to another, read from the ticket that holds the link: "HD-7 duplicate_of HD-3"."""


class TicketMergedData(TicketEventData):
    into_ticket_id: uuid.UUID = Field(description="The ticket this one was merged into; its work continues there.")
    into_number: str
    reason: str = Field(min_length=1, max_length=5_000)
    merged_by: str = Field(description="The agent (or integration) who merged it.")


class TicketMerged(Envelope[TicketMergedData]):
    """The ticket was merged into another: it is closed for work (terminal); its open work ends."""

    type: Literal["ticket.merged"] = "ticket.merged"
    schema_version: Literal[1] = 1


class TicketMergeReceivedData(TicketEventData):
    from_ticket_id: uuid.UUID = Field(description="The ticket merged into this one.")
    from_number: str
    reason: str = Field(min_length=1, max_length=5_000)
    merged_by: str


class TicketMergeReceived(Envelope[TicketMergeReceivedData]):
    """Another ticket was merged into this one (recorded with the source's ticket.merged, in one transaction)."""

    type: Literal["ticket.merge_received"] = "ticket.merge_received"
    schema_version: Literal[1] = 1


class TicketLinkedData(TicketEventData):
    kind: LinkKind
    target_ticket_id: uuid.UUID
    target_number: str
    linked_by: str


class TicketLinked(Envelope[TicketLinkedData]):
    """A link from this ticket to another; the other ticket records the inverse link (parent_of / child_of...)."""

    type: Literal["ticket.linked"] = "ticket.linked"
    schema_version: Literal[1] = 1


class TicketUnlinkedData(TicketEventData):
    kind: LinkKind
    target_ticket_id: uuid.UUID
    target_number: str
    unlinked_by: str


class TicketUnlinked(Envelope[TicketUnlinkedData]):
    """A link removed; the other ticket records the removal of the inverse link."""

    type: Literal["ticket.unlinked"] = "ticket.unlinked"
    schema_version: Literal[1] = 1


TICKET_EVENTS: tuple[type[Envelope], ...] = (
    TicketOpened,
    TicketPrioritised,
    TicketRouted,
    TicketClaimed,
    TicketResolved,
    TicketEscalated,
    TicketAssigned,
    TicketFlagged,
    TicketCustomerReplied,
    TicketReleased,
    TicketNoteAdded,
    TicketStatusChanged,
    TicketClosed,
    TicketReopened,
    TicketMerged,
    TicketMergeReceived,
    TicketLinked,
    TicketUnlinked,
)

MESSAGE_OF_DATA: dict[type[TicketEventData], type[Envelope[Any]]] = {
    m.model_fields["data"].annotation: m
    for m in TICKET_EVENTS  # type: ignore[misc]
}
"""The event (envelope) model that carries each data model: how a decision's data is wrapped for the log."""
