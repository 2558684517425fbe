"""The ticket and its rules: pure Python, no I/O.

A :class:`Ticket` is what its events say it is: :meth:`Ticket.from_events`
folds a stream, :meth:`Ticket.apply` adds one event. The commands (``route``,
``claim``, ``resolve``, ``escalate``, and :func:`open_ticket`) never change a
ticket; they return the events that record the decision, or raise
:class:`TicketRuleViolation` naming the rule that forbids it. A command that
would change nothing returns no events, so a repeated request is harmless.

The life of a ticket: ``open`` (waiting in a queue) → ``in_progress`` (an
agent claimed it, or routing assigned it; the owner may mark it
``waiting_on_customer`` or ``waiting_on_third_party``, or release it back to
``open``) → ``resolved`` → ``closed``. A resolved or closed ticket reopens
within the reopen window. A ticket merged into another is ``merged``: terminal,
its work goes on in the other ticket. Tickets link to each other (each side
records its own view: parent_of on one is child_of on the other). Along the way it
gathers flags (a set: raising a raised flag changes nothing) and the
customer's replies (each channel message once).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from contracts.incidents import Attachment, Channel, CustomerProfile, IncidentIdentifiedData
from contracts.tickets import (
    TicketAssignedData,
    TicketClaimedData,
    TicketClosedData,
    TicketCustomerRepliedData,
    TicketEscalatedData,
    TicketFlaggedData,
    TicketLinkedData,
    TicketMergedData,
    TicketMergeReceivedData,
    TicketNoteAddedData,
    TicketOpenedData,
    TicketPrioritisedData,
    TicketReleasedData,
    TicketReopenedData,
    TicketResolvedData,
    TicketRoutedData,
    TicketStatusChangedData,
    TicketUnlinkedData,
)

TicketEvent = (
    TicketOpenedData
    | TicketPrioritisedData
    | TicketRoutedData
    | TicketClaimedData
    | TicketResolvedData
    | TicketEscalatedData
    | TicketAssignedData
    | TicketFlaggedData
    | TicketCustomerRepliedData
    | TicketReleasedData
    | TicketNoteAddedData
    | TicketStatusChangedData
    | TicketClosedData
    | TicketReopenedData
    | TicketMergedData
    | TicketMergeReceivedData
    | TicketLinkedData
    | TicketUnlinkedData
)

FIRST_LEVEL = 1


class Status(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    WAITING_ON_THIRD_PARTY = "waiting_on_third_party"
    RESOLVED = "resolved"
    CLOSED = "closed"
    MERGED = "merged"  # terminal: its work goes on in the ticket it was merged into


# What an owner may set by hand; the others follow from claiming, resolving, closing and reopening.
SETTABLE_STATUSES = frozenset({Status.IN_PROGRESS, Status.WAITING_ON_CUSTOMER, Status.WAITING_ON_THIRD_PARTY})
FINISHED = frozenset({Status.RESOLVED, Status.CLOSED})  # done, and may reopen within the window
# Waiting on others: SLA clocks stand still. A customer's reply ends either wait: it is news the desk must
# act on (read it, answer it, pass it to the vendor), and escalation starts the clocks again on any reply.
WAITING = frozenset({Status.WAITING_ON_CUSTOMER, Status.WAITING_ON_THIRD_PARTY})
REPLY_ACTOR = "customer"  # who ends a wait by replying (a reply on a channel may come from an unidentified customer)
# Past routing: a routing decision arriving now records nothing (routing raced the agent).
PAST_WORK = FINISHED | {Status.MERGED}

# Each link kind as the other ticket records it.
INVERSE_LINK = {
    "relates_to": "relates_to",
    "duplicate_of": "duplicated_by",
    "duplicated_by": "duplicate_of",
    "parent_of": "child_of",
    "child_of": "parent_of",
    "caused_by": "causes",
    "causes": "caused_by",
}


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: an agent's id, and whether they are a team lead."""

    id: str
    lead: bool = False


@dataclass(frozen=True)
class Link:
    """This ticket ``kind`` the other: ``Link("duplicate_of", id_of_hd3, "HD-3")`` on HD-7."""

    kind: str
    ticket_id: uuid.UUID
    number: str


@dataclass(frozen=True)
class TicketRef:
    """Another ticket, as a merge or link names it."""

    ticket_id: uuid.UUID
    number: str


class TicketRuleViolation(Exception):
    """A command the ticket's rules forbid; ``rule`` is a stable name clients can branch on."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message


def open_ticket(number: str, incident: IncidentIdentifiedData) -> TicketOpenedData:
    """The first event of a ticket: everything known of the incident and the customer."""
    return TicketOpenedData(
        number=number,
        version=1,
        channel=incident.channel,
        channel_message_id=incident.channel_message_id,
        reported_at=incident.received_at,
        subject=incident.subject,
        description=incident.description,
        components=list(incident.components),
        impact=incident.impact,
        urgency=incident.urgency,
        customer=incident.customer,
        attachments=list(incident.attachments),
    )


@dataclass(frozen=True)
class Ticket:
    ticket_id: uuid.UUID
    number: str
    version: int
    status: Status
    channel: Channel
    channel_message_id: str
    reported_at: datetime
    subject: str
    description: str
    components: tuple[str, ...]
    customer: CustomerProfile
    priority: int | None = None
    queue: str | None = None
    level: int = FIRST_LEVEL
    assignee: str | None = None
    resolution: str | None = None
    resolved_by: str | None = None
    flags: frozenset[str] = frozenset()
    # (channel, channel message id) of every reply recorded: a redelivered reply is recognised.
    replies: frozenset[tuple[str, str]] = frozenset()
    public_notes: tuple[str, ...] = ()  # what the customer was told; searched with subject and description
    links: frozenset[Link] = frozenset()
    merged_into: TicketRef | None = None
    merged_from: tuple[TicketRef, ...] = ()  # the tickets merged into this one, in order

    # --- rebuilding from events ----------------------------------------------

    @classmethod
    def from_events(cls, ticket_id: uuid.UUID, events: Iterable[TicketEvent]) -> Ticket:
        stream = iter(events)
        first = next(stream, None)
        if not isinstance(first, TicketOpenedData) or first.version != 1:
            raise ValueError(f"ticket {ticket_id}: a stream must start with ticket.opened at version 1")
        ticket = cls(
            ticket_id=ticket_id,
            number=first.number,
            version=1,
            status=Status.OPEN,
            channel=first.channel,
            channel_message_id=first.channel_message_id,
            reported_at=first.reported_at,
            subject=first.subject,
            description=first.description,
            components=tuple(first.components),
            customer=first.customer,
        )
        return ticket.applied(stream)

    def applied(self, events: Iterable[TicketEvent]) -> Ticket:
        version = self.version
        changes: dict[str, object] = {}
        for event in events:
            if event.version != version + 1:
                # A gap or a repeat means the stream is corrupt; folding on would lie.
                raise ValueError(f"{self.number}: event version {event.version} does not follow {version}")
            version = event.version
            # Events that read the ticket (see _CUMULATIVE) see it as the run so far left it, not as it began.
            current = replace(self, **changes) if changes and isinstance(event, _CUMULATIVE) else self
            changes.update(current._changes(event))
        # One copy for the whole run of events (each event only sets fields): a copy per event cost more than deciding.
        return replace(self, version=version, **changes) if version != self.version else self

    def apply(self, event: TicketEvent) -> Ticket:
        return self.applied([event])

    def _changes(self, event: TicketEvent) -> dict[str, object]:
        match event:
            case TicketPrioritisedData():
                return {"priority": event.priority}
            case TicketRoutedData():
                return {"queue": event.queue}
            case TicketClaimedData():
                return {"status": Status.IN_PROGRESS, "assignee": event.agent_id}
            case TicketResolvedData():
                return {"status": Status.RESOLVED, "resolution": event.resolution, "resolved_by": event.resolved_by}
            case TicketEscalatedData():
                return {"level": event.level, "queue": event.queue}
            case TicketAssignedData():
                # A lead may give an owned ticket to another agent: what it waits for does not change.
                status = Status.IN_PROGRESS if self.status is Status.OPEN else self.status
                return {"status": status, "assignee": event.agent_id}
            case TicketFlaggedData():
                return {"flags": self.flags | {event.flag}}
            case TicketCustomerRepliedData():
                return {"replies": self.replies | {(event.channel.value, event.channel_message_id)}}
            case TicketReleasedData():
                return {"status": Status.OPEN, "assignee": None}
            case TicketNoteAddedData():
                return {"public_notes": (*self.public_notes, event.text)} if event.visibility == "public" else {}
            case TicketStatusChangedData():
                return {"status": Status(event.status)}
            case TicketClosedData():
                return {"status": Status.CLOSED}
            case TicketReopenedData():
                status = Status.IN_PROGRESS if self.assignee else Status.OPEN
                return {"status": status, "resolution": None, "resolved_by": None}
            case TicketMergedData():
                return {"status": Status.MERGED, "merged_into": TicketRef(event.into_ticket_id, event.into_number)}
            case TicketMergeReceivedData():
                return {"merged_from": (*self.merged_from, TicketRef(event.from_ticket_id, event.from_number))}
            case TicketLinkedData():
                return {"links": self.links | {Link(event.kind, event.target_ticket_id, event.target_number)}}
            case TicketUnlinkedData():
                return {"links": self.links - {Link(event.kind, event.target_ticket_id, event.target_number)}}
        raise ValueError(f"{self.number}: cannot apply {type(event).__name__} to an opened ticket")

    # --- commands -------------------------------------------------------------

    def route(
        self,
        *,
        priority: int,
        priority_rule: str,
        priority_reason: str,
        queue: str,
        queue_rule: str,
        queue_reason: str,
        by: str = "routing",
    ) -> list[TicketEvent]:
        """Set priority and queue; a later route records only what changed.

        A resolved ticket is past routing: the decision arrived too late to
        matter, so it records nothing (not an error; routing raced the agent).
        """
        if priority not in range(1, 6):
            raise TicketRuleViolation("priority_out_of_range", f"priority must be 1 to 5, got {priority}")
        if not queue.strip():
            raise TicketRuleViolation("queue_required", "a ticket is routed to a named queue")
        if self.status in PAST_WORK:
            return []
        events: list[TicketEvent] = []
        if priority != self.priority:
            events.append(
                TicketPrioritisedData(
                    number=self.number,
                    version=self._next(events),
                    priority=priority,  # type: ignore[arg-type]  # checked to be 1..5 above
                    rule=priority_rule,
                    reason=priority_reason,
                    by=by,
                )
            )
        if queue != self.queue:
            events.append(
                TicketRoutedData(
                    number=self.number, version=self._next(events), queue=queue, rule=queue_rule, reason=queue_reason
                )
            )
        return events

    def claim(self, agent_id: str) -> list[TicketEvent]:
        """An agent takes ownership; claiming a ticket one already owns changes nothing."""
        _require_agent(agent_id)
        self._require_not_finished("claimed")
        if self.assignee == agent_id:
            return []
        if self.assignee is not None:
            raise TicketRuleViolation(
                "claimed_by_another_agent", f"{self.number} is already claimed by {self.assignee}"
            )
        return [TicketClaimedData(number=self.number, version=self._next(), agent_id=agent_id)]

    def resolve(self, agent_id: str, resolution: str, *, lead: bool = False) -> list[TicketEvent]:
        """The owner (or a team lead) records the resolution; repeating the same resolution changes nothing."""
        _require_agent(agent_id)
        if not resolution.strip():
            raise TicketRuleViolation("resolution_required", "a resolution must say what was done")
        self._require_not_merged("resolved")
        if self.status is Status.CLOSED:
            raise TicketRuleViolation("ticket_closed", f"{self.number} is closed; reopen it first")
        if self.status is Status.RESOLVED:
            if self.resolved_by == agent_id and self.resolution == resolution:
                return []
            raise TicketRuleViolation("ticket_resolved", f"{self.number} is already resolved by {self.resolved_by}")
        if self.assignee != agent_id and not lead:
            owner = f"claimed by {self.assignee}" if self.assignee else "not claimed"
            raise TicketRuleViolation(
                "only_owner_can_resolve", f"{self.number} is {owner}; only its owner or a team lead can resolve it"
            )
        return [
            TicketResolvedData(number=self.number, version=self._next(), resolution=resolution, resolved_by=agent_id)
        ]

    def escalate(self, *, level: int, queue: str, reason: str, owned_too: bool = False) -> list[TicketEvent]:
        """Move an outstanding ticket up to ``level`` and into that level's queue.

        An unclaimed ticket waits in the new level's line. An owned one is
        escalated only when ``owned_too`` (its resolution or next update is late,
        which a claim does not answer); it stays with its owner, and the next
        level sees it in its queue. Escalation races with agents: a ticket
        claimed (for a first-response breach), resolved, closed or merged
        meanwhile is no longer outstanding, so escalating it records nothing.
        """
        if not queue.strip():
            raise TicketRuleViolation("queue_required", "an escalation names the level's queue")
        if self.status in PAST_WORK or (self.status is not Status.OPEN and not owned_too):
            return []
        if level <= self.level:
            raise TicketRuleViolation(
                "escalation_must_raise_level", f"{self.number} is at level {self.level}; cannot escalate to {level}"
            )
        return [TicketEscalatedData(number=self.number, version=self._next(), level=level, queue=queue, reason=reason)]

    def assign(self, agent_id: str, *, strategy: str, reason: str) -> list[TicketEvent]:
        """Routing gives the ticket to an agent; giving it to its assignee again changes nothing.

        A ticket another agent already owns is not taken from them: routing
        decided on a ticket that was unclaimed when it looked.
        """
        _require_agent(agent_id)
        self._require_not_finished("assigned")
        if self.assignee == agent_id:
            return []
        if self.assignee is not None:
            raise TicketRuleViolation("claimed_by_another_agent", f"{self.number} is already owned by {self.assignee}")
        return [
            TicketAssignedData(
                number=self.number,
                version=self._next(),
                agent_id=agent_id,
                strategy=strategy,  # type: ignore[arg-type]  # the command's literal, passed through
                reason=reason,
            )
        ]

    def assign_to(self, agent_id: str, *, lead: Actor, reason: str) -> list[TicketEvent]:
        """A team lead gives the ticket to a named agent, taking it from its owner if it has one.

        Giving it to its owner changes nothing. Its status stays (a ticket waiting on the
        customer still waits, now for the new owner); an unowned one is in progress.
        """
        _require_agent(agent_id)
        if not lead.lead:
            raise TicketRuleViolation("only_lead_assigns", "only a team lead gives a ticket to another agent")
        self._require_not_finished("assigned")
        if self.assignee == agent_id:
            return []
        return [
            TicketAssignedData(
                number=self.number,
                version=self._next(),
                agent_id=agent_id,
                strategy="direct",
                reason=reason.strip() or f"assigned by {lead.id}",
                assigned_by=lead.id,
            )
        ]

    def flag(self, flag: str, *, reason: str, raised_by: str) -> list[TicketEvent]:
        """Raise a flag agents see on the ticket; a flag already raised changes nothing."""
        if not flag.strip():
            raise TicketRuleViolation("flag_required", "a flag has a name")
        if flag in self.flags or self.status is Status.MERGED:
            return []  # a merged ticket has no work left to flag
        return [
            TicketFlaggedData(number=self.number, version=self._next(), flag=flag, reason=reason, raised_by=raised_by)
        ]

    def belongs_to(self, customer: CustomerProfile) -> bool:
        """Whether ``customer`` is the ticket's customer: the same directory id, or for
        customers the directory does not know, the same e-mail address, phone number,
        social handle (the channel's own sender id, e.g. ``facebook:<PSID>``) or claimed
        user id. What an unverified contact says never makes it a verified one's customer."""
        mine = self.customer
        if mine.customer_id or customer.customer_id:
            return mine.customer_id == customer.customer_id
        if mine.verified != customer.verified:
            return False

        def handle(value: str | None) -> str:
            return (value or "").strip().lstrip("@").casefold()

        same_email = bool(mine.email) and (mine.email or "").casefold() == (customer.email or "").casefold()
        same_phone = bool(mine.phone) and mine.phone == customer.phone
        same_handle = bool(handle(mine.social_handle)) and handle(mine.social_handle) == handle(customer.social_handle)
        same_claim = bool(mine.claimed_user_id) and mine.claimed_user_id == customer.claimed_user_id
        return same_email or same_phone or same_handle or same_claim

    def accepts_reply(self) -> bool:
        """Whether a customer's reply is recorded on this ticket rather than opening a new one."""
        return self.status not in (Status.CLOSED, Status.MERGED)

    def record_reply(
        self,
        *,
        channel: Channel,
        channel_message_id: str,
        received_at: datetime,
        text: str,
        attachments: Sequence[Attachment] = (),
    ) -> list[TicketEvent]:
        """The customer answered; the same channel message recorded twice is recorded once.

        A ticket waiting (on the customer or a third party) goes back to ``in_progress`` with the
        reply, so its status and its SLA clocks agree, and the owner can set a wait again.
        Whether the ticket still takes replies is the caller's to ask (:meth:`accepts_reply`):
        a redelivered reply is recognised even on a ticket closed since.
        """
        if (channel.value, channel_message_id) in self.replies:
            return []
        replied = TicketCustomerRepliedData(
            number=self.number,
            version=self._next(),
            channel=channel,
            channel_message_id=channel_message_id,
            received_at=received_at,
            text=text,
            attachments=list(attachments),
        )
        if self.status not in WAITING:
            return [replied]
        back_to_work = TicketStatusChangedData(
            number=self.number,
            version=self._next([replied]),
            status=Status.IN_PROGRESS.value,
            previous_status=self.status.value,
            by=REPLY_ACTOR,
            reason=f"the customer replied by {channel.value}",
        )
        return [replied, back_to_work]

    def customer_reply(
        self, *, channel: Channel, message_id: str, received_at: datetime, text: str
    ) -> list[TicketEvent]:
        """The customer writes on their ticket through the API; a closed or merged ticket takes no more."""
        if not text.strip():
            raise TicketRuleViolation("note_text_required", "a reply has text")
        if (channel.value, message_id) not in self.replies:
            self._require_not_merged("replied to")
            if self.status is Status.CLOSED:
                raise TicketRuleViolation("ticket_closed", f"{self.number} is closed and takes no more replies")
        return self.record_reply(channel=channel, channel_message_id=message_id, received_at=received_at, text=text)

    # --- the agent's workflow ----------------------------------------------------

    def release(self, actor: Actor) -> list[TicketEvent]:
        """The owner (or a lead) puts the ticket back in its queue, open and unowned."""
        self._require_not_finished("released")
        if self.assignee is None:
            raise TicketRuleViolation("ticket_not_claimed", f"{self.number} has no owner to release it")
        self._require_owner_or_lead(actor, "release")
        return [
            TicketReleasedData(
                number=self.number, version=self._next(), released_by=actor.id, previous_assignee=self.assignee
            )
        ]

    def add_note(self, author: str, text: str, visibility: str) -> list[TicketEvent]:
        """Any agent may write on any ticket; a public note is sent to the customer."""
        _require_agent(author)
        if not text.strip():
            raise TicketRuleViolation("note_text_required", "a note has text")
        self._require_not_merged("written on")
        if visibility not in ("internal", "public"):
            raise TicketRuleViolation("visibility_unknown", f"visibility is internal or public, not {visibility!r}")
        return [
            TicketNoteAddedData(
                number=self.number,
                version=self._next(),
                text=text,
                visibility=visibility,  # type: ignore[arg-type]  # checked above
                author=author,
            )
        ]

    def change_status(self, actor: Actor, status: Status) -> list[TicketEvent]:
        """The owner (or a lead) says what the ticket waits for; the same status again changes nothing."""
        if status not in SETTABLE_STATUSES:
            settable = ", ".join(sorted(SETTABLE_STATUSES))
            raise TicketRuleViolation(
                "status_not_settable", f"{status} follows from the workflow; set one of {settable}"
            )
        self._require_not_finished("changed")
        if self.assignee is None:
            raise TicketRuleViolation("ticket_not_claimed", f"{self.number} has no owner; claim it first")
        self._require_owner_or_lead(actor, "change the status of")
        if status is self.status:
            return []
        return [
            TicketStatusChangedData(
                number=self.number,
                version=self._next(),
                status=status.value,  # type: ignore[arg-type]  # one of SETTABLE_STATUSES
                previous_status=self.status.value,
                by=actor.id,
            )
        ]

    def change_priority(self, actor: Actor, priority: int, reason: str) -> list[TicketEvent]:
        """An agent overrides routing's priority, saying why (recorded with rule ``manual``)."""
        if priority not in range(1, 6):
            raise TicketRuleViolation("priority_out_of_range", f"priority must be 1 to 5, got {priority}")
        _require_reason(reason)
        self._require_not_finished("reprioritised")
        if priority == self.priority:
            return []
        return [
            TicketPrioritisedData(
                number=self.number,
                version=self._next(),
                priority=priority,  # type: ignore[arg-type]  # checked to be 1..5 above
                rule="manual",
                reason=reason,
                by=actor.id,
            )
        ]

    def move_to_queue(self, actor: Actor, queue: str, reason: str) -> list[TicketEvent]:
        """An agent moves the ticket to another queue (rule ``manual``: routing leaves it there)."""
        if not queue.strip():
            raise TicketRuleViolation("queue_required", "a ticket is moved to a named queue")
        _require_reason(reason)
        self._require_not_finished("moved")
        if queue == self.queue:
            return []
        # ticket.routed has no field for who decided; the reason says it.
        return [
            TicketRoutedData(
                number=self.number, version=self._next(), queue=queue, rule="manual", reason=f"{actor.id}: {reason}"
            )
        ]

    def close(self, actor: Actor) -> list[TicketEvent]:
        """The owner (or a lead) closes a resolved ticket; closing a closed ticket changes nothing."""
        self._require_not_merged("closed")
        if self.status is Status.CLOSED:
            return []
        if self.status is not Status.RESOLVED:
            raise TicketRuleViolation("only_resolved_can_close", f"{self.number} is {self.status}; resolve it first")
        if not actor.lead and actor.id not in (self.assignee, self.resolved_by):
            raise TicketRuleViolation(
                "only_owner_or_lead", f"only {self.resolved_by} or a team lead can close {self.number}"
            )
        return [TicketClosedData(number=self.number, version=self._next(), closed_by=actor.id)]

    def reopen(
        self, actor: Actor, reason: str, *, now: datetime, finished_at: datetime, window: timedelta
    ) -> list[TicketEvent]:
        """Reopen a resolved or closed ticket, no later than ``window`` after it was resolved or closed
        (``finished_at``: the time of its last ticket.resolved or ticket.closed)."""
        _require_reason(reason)
        self._require_not_merged("reopened")
        if self.status not in FINISHED:
            raise TicketRuleViolation(
                "ticket_not_finished", f"{self.number} is {self.status}; only resolved or closed tickets reopen"
            )
        if now - finished_at > window:
            raise TicketRuleViolation(
                "reopen_window_passed",
                f"{self.number} was {self.status} at {finished_at.isoformat()}; tickets reopen within "
                f"{int(window.total_seconds())} s (open a new ticket instead)",
            )
        return [TicketReopenedData(number=self.number, version=self._next(), reason=reason, reopened_by=actor.id)]

    # --- merging and linking ---------------------------------------------------------

    def merge(self, actor: Actor, into: Ticket, reason: str) -> tuple[list[TicketEvent], list[TicketEvent]]:
        """Merge this ticket into ``into``: (this ticket's events, the other's).

        This ticket becomes ``merged`` (terminal) and ``into`` records what it
        received. Its owner or a lead may; an unowned ticket, any agent. Merging
        again into the same ticket changes nothing.
        """
        _require_agent(actor.id)
        _require_reason(reason)
        if into.ticket_id == self.ticket_id:
            raise TicketRuleViolation("cannot_merge_into_itself", f"{self.number} cannot be merged into itself")
        if self.merged_into is not None:
            if self.merged_into.ticket_id == into.ticket_id:
                return [], []
            raise TicketRuleViolation(
                "ticket_already_merged", f"{self.number} is already merged into {self.merged_into.number}"
            )
        if self.status is Status.CLOSED:
            raise TicketRuleViolation("ticket_closed", f"{self.number} is closed and cannot be merged")
        if into.status is Status.MERGED:
            where = into.merged_into.number if into.merged_into else "another ticket"
            raise TicketRuleViolation(
                "cannot_merge_into_merged_ticket", f"{into.number} is itself merged into {where}; merge into that"
            )
        if into.status is Status.CLOSED:
            raise TicketRuleViolation("cannot_merge_into_closed_ticket", f"{into.number} is closed; reopen it first")
        if self.assignee is not None:
            self._require_owner_or_lead(actor, "merge")
        merged = TicketMergedData(
            number=self.number,
            version=self._next(),
            into_ticket_id=into.ticket_id,
            into_number=into.number,
            reason=reason,
            merged_by=actor.id,
        )
        received = TicketMergeReceivedData(
            number=into.number,
            version=into._next(),
            from_ticket_id=self.ticket_id,
            from_number=self.number,
            reason=reason,
            merged_by=actor.id,
        )
        return [merged], [received]

    def link(self, actor: Actor, other: Ticket, kind: str) -> tuple[list[TicketEvent], list[TicketEvent]]:
        """Link this ticket ``kind`` ``other``: (this ticket's events, the other's, with the inverse kind).

        Any agent may. A link already there changes nothing; a merged ticket takes no new links.
        """
        _require_agent(actor.id)
        inverse = _inverse(kind)
        self._require_other(other, "linked to")
        return self._linked(kind, other, actor.id), other._linked(inverse, self, actor.id)

    def unlink(self, actor: Actor, other: Ticket, kind: str) -> tuple[list[TicketEvent], list[TicketEvent]]:
        """Remove the link ``kind`` to ``other`` (and its inverse there); a link not there changes nothing."""
        _require_agent(actor.id)
        inverse = _inverse(kind)
        self._require_other(other, "unlinked from")
        return self._unlinked(kind, other, actor.id), other._unlinked(inverse, self, actor.id)

    def _linked(self, kind: str, other: Ticket, by: str) -> list[TicketEvent]:
        if Link(kind, other.ticket_id, other.number) in self.links:
            return []
        return [
            TicketLinkedData(
                number=self.number,
                version=self._next(),
                kind=kind,  # type: ignore[arg-type]  # checked by _inverse
                target_ticket_id=other.ticket_id,
                target_number=other.number,
                linked_by=by,
            )
        ]

    def _unlinked(self, kind: str, other: Ticket, by: str) -> list[TicketEvent]:
        if Link(kind, other.ticket_id, other.number) not in self.links:
            return []
        return [
            TicketUnlinkedData(
                number=self.number,
                version=self._next(),
                kind=kind,  # type: ignore[arg-type]  # checked by _inverse
                target_ticket_id=other.ticket_id,
                target_number=other.number,
                unlinked_by=by,
            )
        ]

    def _require_other(self, other: Ticket, verb: str) -> None:
        if other.ticket_id == self.ticket_id:
            raise TicketRuleViolation("cannot_link_to_itself", f"{self.number} cannot be {verb} itself")
        self._require_not_merged(verb)
        other._require_not_merged(verb)

    def _require_not_merged(self, verb: str) -> None:
        if self.status is Status.MERGED:
            into = self.merged_into.number if self.merged_into else "another ticket"
            raise TicketRuleViolation("ticket_merged", f"{self.number} is merged into {into} and cannot be {verb}")

    def _require_not_finished(self, verb: str) -> None:
        self._require_not_merged(verb)
        if self.status in FINISHED:
            rule = "ticket_closed" if self.status is Status.CLOSED else "ticket_resolved"
            raise TicketRuleViolation(rule, f"{self.number} is {self.status} and cannot be {verb}")

    def _require_owner_or_lead(self, actor: Actor, verb: str) -> None:
        _require_agent(actor.id)
        if actor.id != self.assignee and not actor.lead:
            raise TicketRuleViolation(
                "only_owner_or_lead", f"{self.number} is {self.assignee}'s; only they or a team lead can {verb} it"
            )

    def _next(self, pending: Sequence[TicketEvent] = ()) -> int:
        return self.version + len(pending) + 1


# The events whose change reads the ticket (its flags, replies, notes, links, owner...): folded against
# the ticket as the run so far left it. An event missing here would see the ticket as the run began.
_CUMULATIVE = (
    TicketReopenedData,  # back to its owner: one claimed earlier in the same run counts
    TicketAssignedData,  # keeps the status it finds (a wait set earlier in the same run)
    TicketFlaggedData,
    TicketCustomerRepliedData,
    TicketNoteAddedData,
    TicketMergeReceivedData,
    TicketLinkedData,
    TicketUnlinkedData,
)


def _inverse(kind: str) -> str:
    if kind not in INVERSE_LINK:
        raise TicketRuleViolation("link_kind_unknown", f"a link is one of {', '.join(INVERSE_LINK)}, not {kind!r}")
    return INVERSE_LINK[kind]


def _require_reason(reason: str) -> None:
    if not reason.strip():
        raise TicketRuleViolation("reason_required", "say why (the reason is recorded on the ticket)")


def _require_agent(agent_id: str) -> None:
    if not agent_id.strip():
        raise TicketRuleViolation("agent_required", "the agent's id is required")
