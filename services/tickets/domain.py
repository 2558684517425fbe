"""The ticket and its rules: pure Python, no I/O.

A :class:`Ticket` is what its events say it is: :meth:`Ticket.from_events`
folds a stream, :meth:`Ticket.apply` adds one event. The commands (``route``,
``claim``, ``resolve``, ``escalate``, and :func:`open_ticket`) never change a
ticket; they return the events that record the decision, or raise
:class:`TicketRuleViolation` naming the rule that forbids it. A command that
would change nothing returns no events, so a repeated request is harmless.

The life of a ticket: ``open`` (waiting in a queue) → ``in_progress`` (an
agent claimed it) → ``resolved``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from contracts.incidents import Channel, CustomerProfile, IncidentIdentifiedData
from contracts.tickets import (
    TicketClaimedData,
    TicketEscalatedData,
    TicketOpenedData,
    TicketPrioritisedData,
    TicketResolvedData,
    TicketRoutedData,
)

TicketEvent = (
    TicketOpenedData
    | TicketPrioritisedData
    | TicketRoutedData
    | TicketClaimedData
    | TicketResolvedData
    | TicketEscalatedData
)

FIRST_LEVEL = 1


class Status(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"


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
            changes.update(self._changes(event))
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
        if self.status is Status.RESOLVED:
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
        if self.status is Status.RESOLVED:
            raise TicketRuleViolation("ticket_resolved", f"{self.number} is resolved and cannot be claimed")
        if self.assignee == agent_id:
            return []
        if self.assignee is not None:
            raise TicketRuleViolation(
                "claimed_by_another_agent", f"{self.number} is already claimed by {self.assignee}"
            )
        return [TicketClaimedData(number=self.number, version=self._next(), agent_id=agent_id)]

    def resolve(self, agent_id: str, resolution: str) -> list[TicketEvent]:
        """The owner records the resolution; repeating the same resolution changes nothing."""
        _require_agent(agent_id)
        if not resolution.strip():
            raise TicketRuleViolation("resolution_required", "a resolution must say what was done")
        if self.status is Status.RESOLVED:
            if self.resolved_by == agent_id and self.resolution == resolution:
                return []
            raise TicketRuleViolation("ticket_resolved", f"{self.number} is already resolved by {self.resolved_by}")
        if self.assignee != agent_id:
            owner = f"claimed by {self.assignee}" if self.assignee else "not claimed"
            raise TicketRuleViolation(
                "only_owner_can_resolve", f"{self.number} is {owner}; only its owner can resolve it"
            )
        return [
            TicketResolvedData(number=self.number, version=self._next(), resolution=resolution, resolved_by=agent_id)
        ]

    def escalate(self, *, level: int, queue: str, reason: str) -> list[TicketEvent]:
        """Move an unclaimed ticket up to ``level`` and into that level's queue.

        Escalation races with agents: a ticket resolved or claimed meanwhile is
        no longer outstanding, so escalating it records nothing (not an error).
        """
        if not queue.strip():
            raise TicketRuleViolation("queue_required", "an escalation names the level's queue")
        if self.status is not Status.OPEN:
            return []
        if level <= self.level:
            raise TicketRuleViolation(
                "escalation_must_raise_level", f"{self.number} is at level {self.level}; cannot escalate to {level}"
            )
        return [TicketEscalatedData(number=self.number, version=self._next(), level=level, queue=queue, reason=reason)]

    def _next(self, pending: Sequence[TicketEvent] = ()) -> int:
        return self.version + len(pending) + 1


def _require_agent(agent_id: str) -> None:
    if not agent_id.strip():
        raise TicketRuleViolation("agent_required", "the agent's id is required")
