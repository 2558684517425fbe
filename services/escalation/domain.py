"""The escalation rules, in plain Python: levels, deadlines and how ticket events move them.

A ticket has at most one deadline at a time: the moment it escalates from its
current level if still unclaimed. ``apply`` says how each ticket event changes
that deadline; ``escalation_due`` says what to do when it passes. Both are pure:
the caller loads and stores the deadline and publishes the result.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from contracts.envelope import Envelope
from contracts.tickets import TicketClaimed, TicketEscalated, TicketOpened, TicketResolved, TicketRouted

ESCALATION_NAMESPACE = uuid.UUID("5b1f3c2e-8a4d-4f0e-9c6b-2d7e1a9f4b30")
"""Namespace of the ids escalation derives: the same ticket and level always give the same id."""


@dataclass(frozen=True)
class Level:
    """One support level: where an escalated ticket goes and who hears of it."""

    number: int
    name: str
    queue: str | None  # None for level 1: the queue routing chose
    email: str


@dataclass(frozen=True)
class EscalationPolicy:
    levels: tuple[Level, ...]
    unclaimed_after: timedelta

    def level(self, number: int) -> Level | None:
        return next((lvl for lvl in self.levels if lvl.number == number), None)

    def next_level(self, number: int) -> Level | None:
        return self.level(number + 1)


class DeadlineState(StrEnum):
    PENDING = "pending"  # the ticket escalates when due_at passes
    FIRED = "fired"  # the escalation was sent; waiting for ticket.escalated
    CANCELLED = "cancelled"  # claimed or resolved: nothing more to escalate
    DONE = "done"  # at the top level, unclaimed: nowhere left to escalate to


@dataclass(frozen=True)
class Deadline:
    ticket_id: uuid.UUID
    number: str
    level: int
    queue: str | None
    due_at: datetime
    state: DeadlineState
    correlation_id: str | None = None

    @property
    def open(self) -> bool:
        """Still unclaimed and unresolved."""
        return self.state in (DeadlineState.PENDING, DeadlineState.FIRED)


MOVES_DEADLINES: tuple[type[Envelope[Any]], ...] = (
    TicketOpened,
    TicketRouted,
    TicketClaimed,
    TicketResolved,
    TicketEscalated,
)
"""The ticket events that can move a deadline; ``apply`` ignores every other one (a new event
type that should move deadlines is added here and in ``apply``)."""


def fold(
    known: Mapping[uuid.UUID, Deadline], events: Iterable[Envelope[Any]], policy: EscalationPolicy
) -> dict[uuid.UUID, Deadline]:
    """Apply ``events`` in order to the ``known`` deadlines; the deadlines they changed, as they end up.

    ``known`` holds the stored deadline of each ticket the events concern (a
    ticket without one is absent). Several events of one ticket build on each
    other, so a batch of events gives the same deadlines as the events one by one.
    """
    current = dict(known)
    changed: dict[uuid.UUID, Deadline] = {}
    for event in events:
        ticket_id = _ticket_id(event)
        after = apply(current.get(ticket_id), event, policy)
        if after is not None:
            current[ticket_id] = changed[ticket_id] = after
    return changed


def apply(deadline: Deadline | None, event: Envelope[Any], policy: EscalationPolicy) -> Deadline | None:
    """The deadline after ``event``, or None when the event changes nothing."""
    if not isinstance(event, MOVES_DEADLINES):
        return None  # the consumer skips these events without reading anything
    if isinstance(event, TicketOpened):
        return _opened(deadline, event, policy)
    if deadline is None:
        return None  # an event for a ticket whose opening we never saw: nothing to hold
    if isinstance(event, TicketRouted):
        return replace(deadline, queue=event.data.queue) if deadline.queue != event.data.queue else None
    if isinstance(event, (TicketClaimed, TicketResolved)):
        return replace(deadline, state=DeadlineState.CANCELLED) if deadline.open else None
    if isinstance(event, TicketEscalated):
        return _escalated(deadline, event, policy)
    return None


def _opened(deadline: Deadline | None, event: TicketOpened, policy: EscalationPolicy) -> Deadline | None:
    if deadline is not None:
        return None  # the ticket is already known; its opening never restarts the clock
    first = policy.levels[0]
    state = DeadlineState.PENDING if policy.next_level(first.number) else DeadlineState.DONE
    return Deadline(
        ticket_id=_ticket_id(event),
        number=event.data.number,
        level=first.number,
        queue=None,
        due_at=event.occurred_at + policy.unclaimed_after,
        state=state,
        correlation_id=event.correlation_id,
    )


def _escalated(deadline: Deadline, event: TicketEscalated, policy: EscalationPolicy) -> Deadline | None:
    if event.data.level <= deadline.level:
        return None  # never back down, and never hold a second deadline for the same level
    moved = replace(deadline, level=event.data.level, queue=event.data.queue)
    if not deadline.open:
        return moved  # claimed or resolved meanwhile: record the level, start no clock
    if policy.next_level(event.data.level) is None:
        return replace(moved, state=DeadlineState.DONE)
    return replace(moved, state=DeadlineState.PENDING, due_at=event.occurred_at + policy.unclaimed_after)


@dataclass(frozen=True)
class Escalation:
    """What a passed deadline asks for: the ticket moves to ``to_level``."""

    deadline: Deadline
    to_level: Level
    command_id: uuid.UUID
    notification_id: uuid.UUID
    reason: str


def escalation_due(deadline: Deadline, policy: EscalationPolicy, now: datetime) -> Escalation | None:
    """The escalation a passed, pending deadline asks for; None if it is not due or has nowhere to go."""
    if deadline.state is not DeadlineState.PENDING or deadline.due_at > now:
        return None
    to_level = policy.next_level(deadline.level)
    if to_level is None:
        return None
    minutes = policy.unclaimed_after.total_seconds() / 60
    return Escalation(
        deadline=deadline,
        to_level=to_level,
        command_id=escalate_command_id(deadline.ticket_id, to_level.number),
        notification_id=escalation_notification_id(deadline.ticket_id, to_level.number),
        reason=f"unclaimed for {minutes:g} min at level {deadline.level}",
    )


def escalate_command_id(ticket_id: uuid.UUID, to_level: int) -> uuid.UUID:
    # The id names the ticket and the level, not the moment: a crash between publishing and
    # recording "fired" republishes the same command, which the ticket service applies once.
    return uuid.uuid5(ESCALATION_NAMESPACE, f"escalate:{ticket_id}:{to_level}")


def escalation_notification_id(ticket_id: uuid.UUID, to_level: int) -> uuid.UUID:
    return uuid.uuid5(ESCALATION_NAMESPACE, f"notify-escalation:{ticket_id}:{to_level}")


def _ticket_id(event: Envelope[Any]) -> uuid.UUID:
    if event.ticket_id is None:
        raise ValueError(f"{event.type} {event.event_id} carries no ticket_id")
    return event.ticket_id
