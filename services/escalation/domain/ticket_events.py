"""How each ticket event moves a ticket's deadlines: ``apply`` one event, ``fold`` a batch.

Pure: the caller loads the stored deadlines, folds the batch's events over
them and stores the ones that changed.

- Opening starts the first-response and resolution clocks at level 1.
- A claim, an assignment or a public reply by an agent is the first response:
  it stops the first-response clock and starts the next-update clock; every
  later public reply starts the next-update clock again.
- Waiting on the customer or a third party stops every clock; any other status
  (or a customer reply) starts them again, carrying the business time used.
- Resolving stops them all; reopening starts the next-update clock afresh and
  resumes the resolution clock with the time it had used (the time spent
  resolved counts like a wait).
- ``ticket.escalated`` restarts the first-response clock at the new level,
  if nobody has answered yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from contracts.envelope import Envelope
from contracts.tickets import (
    TicketAssigned,
    TicketClaimed,
    TicketCustomerReplied,
    TicketEscalated,
    TicketMerged,
    TicketNoteAdded,
    TicketOpened,
    TicketPrioritised,
    TicketResolved,
    TicketRouted,
)
from services.escalation.domain.deadline import (
    Deadline,
    DeadlineState,
    other_clocks_timed,
    retimed,
)
from services.escalation.domain.message_ids import measure_id
from services.escalation.domain.policy import EscalationPolicy
from services.escalation.status import (
    PAUSING_STATUSES,
    StatusChange,
    is_reopening,
    status_change,
)

MOVES_DEADLINES: tuple[type[Envelope[Any]], ...] = (
    TicketOpened,
    TicketPrioritised,
    TicketRouted,
    TicketClaimed,
    TicketAssigned,
    TicketResolved,
    TicketMerged,
    TicketEscalated,
    TicketCustomerReplied,
    TicketNoteAdded,
)
"""The ticket events that can move a deadline, besides ``ticket.status_changed`` (see ``status.py``);
``apply`` ignores every other one (a new event type that should move deadlines is added here and in ``apply``)."""


def moves_deadlines(event: Envelope[Any]) -> bool:
    if isinstance(event, TicketNoteAdded):
        return is_public_reply(event)  # an internal note tells the customer nothing
    return isinstance(event, MOVES_DEADLINES) or status_change(event) is not None or is_reopening(event)


def is_public_reply(event: Envelope[Any]) -> bool:
    """A note an agent wrote for the customer to read: a response, as far as the SLA is concerned."""
    return isinstance(event, TicketNoteAdded) and event.data.visibility == "public"


def _is_response(event: Envelope[Any]) -> bool:
    """The ticket has an owner who will answer (a claim or an assignment), or has been answered."""
    return isinstance(event, (TicketClaimed, TicketAssigned)) or is_public_reply(event)


@dataclass(frozen=True)
class Measure:
    """One SLA measurement an event completes: seconds from opening, less the time spent waiting on others."""

    kind: str  # first_response | resolution
    seconds: float
    priority: int
    queue: str
    ticket_id: uuid.UUID
    measure_id: uuid.UUID  # from the completing event: stored once, however often it is applied
    at: datetime  # when the event happened


def measure(deadline: Deadline | None, event: Envelope[Any]) -> Measure | None:
    """What ``event`` completes for the metrics, given the deadline before it."""
    if deadline is None or deadline.opened_at is None:
        return None
    if _is_response(event) and deadline.open:
        kind = "first_response"
    elif isinstance(event, TicketResolved):
        kind = "resolution"
    else:
        return None
    waited = deadline.paused_total_s
    if deadline.paused_at is not None:
        waited += (event.occurred_at - deadline.paused_at).total_seconds()
    seconds = max(0.0, (event.occurred_at - deadline.opened_at).total_seconds() - waited)
    return Measure(
        kind, seconds, deadline.priority, deadline.queue or "", deadline.ticket_id,
        measure_id(event.event_id, kind), event.occurred_at,
    )


def fold(
    known: Mapping[uuid.UUID, Deadline],
    events: Iterable[Envelope[Any]],
    policy: EscalationPolicy,
    measures: list[Measure] | None = None,
) -> dict[uuid.UUID, Deadline]:
    """Apply ``events`` in order to the ``known`` deadlines; the deadlines they changed, as they end up.

    ``known`` holds the stored deadline of each ticket the events concern (a
    ticket without one is absent). Several events of one ticket build on each
    other, so a batch of events gives the same deadlines as the events one by one.
    """
    current = dict(known)
    changed: dict[uuid.UUID, Deadline] = {}
    for event in events:
        ticket_id = ticket_id_of(event)
        if measures is not None and (found := measure(current.get(ticket_id), event)) is not None:
            measures.append(found)
        after = apply(current.get(ticket_id), event, policy)
        if after is not None:
            current[ticket_id] = changed[ticket_id] = after
    return changed


def apply(deadline: Deadline | None, event: Envelope[Any], policy: EscalationPolicy) -> Deadline | None:
    """The deadline after ``event``, or None when the event changes nothing."""
    change = status_change(event)
    if change is not None:
        after = status_changed(deadline, change, event.occurred_at, policy) if deadline is not None else None
    elif is_reopening(event):
        after = reopened(deadline, event.occurred_at, policy) if deadline is not None else None
    elif not moves_deadlines(event):
        return None  # the consumer skips these events without reading anything
    elif isinstance(event, TicketOpened):
        return _opened(deadline, event, policy)
    elif deadline is None:
        return None  # an event for a ticket whose opening we never saw: nothing to hold
    else:
        after = _moved(deadline, event, policy)
    if after is None:
        return None
    after = other_clocks_timed(after, policy)
    return after if after != deadline else None


def _moved(deadline: Deadline, event: Envelope[Any], policy: EscalationPolicy) -> Deadline | None:
    if isinstance(event, TicketPrioritised):
        return retimed(replace(deadline, priority=event.data.priority), policy)
    if isinstance(event, TicketRouted):
        return retimed(replace(deadline, queue=event.data.queue), policy)
    if _is_response(event):
        return responded(deadline, event.occurred_at, public=is_public_reply(event))
    if isinstance(event, (TicketResolved, TicketMerged)):
        # A merged ticket is finished like a resolved one: its work goes on in the ticket it was merged into.
        resolved = replace(deadline, resolved_at=event.occurred_at, unanswered=0, update_since=None)
        if not deadline.open:
            return resolved
        return replace(resolved, state=DeadlineState.CANCELLED, running_since=None, warn_at=None)
    if isinstance(event, TicketCustomerReplied):
        replied = replace(deadline, unanswered=deadline.unanswered + 1)
        replied = resumed(replied, event.occurred_at, policy) or replied
        limit = policy.criteria.customer_replies_unanswered
        return _at_once(replied, event.occurred_at, policy) if limit and replied.unanswered >= limit else replied
    if isinstance(event, TicketEscalated):
        return _escalated(deadline, event, policy)
    return None


def responded(deadline: Deadline, at: datetime, *, public: bool) -> Deadline:
    """A claim, an assignment or a public reply: the first response is given; a public reply is an update."""
    answered = replace(deadline, unanswered=0)
    if deadline.open:
        answered = replace(answered, state=DeadlineState.CANCELLED, running_since=None, warn_at=None)
    if deadline.resolved_at is not None:
        return answered
    # A cancelled clock without a response time was answered before (or resolved): a claim is not news then.
    first = deadline.responded_at is None and deadline.state is not DeadlineState.CANCELLED
    if first or public:
        # The customer heard from us (or the ticket has an owner who will answer): the next update is owed from now.
        return _update_started(replace(answered, responded_at=deadline.responded_at or at), at)
    return answered


def _update_started(deadline: Deadline, at: datetime) -> Deadline:
    """A new run of the next-update clock, standing still if the ticket waits on others."""
    return replace(
        deadline,
        update_run=deadline.update_run + 1,
        update_since=None if deadline.paused_at is not None else at,
        update_used_s=0.0,
        update_warned=0,
        update_breached=False,
    )


def status_changed(
    deadline: Deadline, change: StatusChange, at: datetime, policy: EscalationPolicy
) -> Deadline | None:
    """Waiting on the customer or a third party stops the clocks; any other status restarts them."""
    if change.status in PAUSING_STATUSES:
        return paused(deadline, at, policy)
    return resumed(deadline, at, policy)


def reopened(deadline: Deadline, at: datetime, policy: EscalationPolicy) -> Deadline:
    """Counted, and an update is owed again; reopened often enough, the ticket escalates at once.

    The resolution clock resumes with the time it had used when the ticket was resolved: the time spent
    resolved counts like a wait on the customer (had it counted, a ticket reopened days later would breach at once).
    """
    counted = replace(deadline, reopened=deadline.reopened + 1, resolved_at=None)
    if deadline.resolved_at is not None and deadline.paused_at is None:  # a wait open across it ends by itself
        business = policy.timing(deadline.facts).calendar.between(deadline.resolved_at, at)
        waited = max(0.0, (at - deadline.resolved_at).total_seconds())
        counted = replace(
            counted,
            paused_business_s=deadline.paused_business_s + business,
            paused_total_s=deadline.paused_total_s + waited,
        )
    if counted.responded_at is not None:
        counted = _update_started(counted, at)
    limit = policy.criteria.reopened
    if not limit or counted.reopened < limit or deadline.state in (DeadlineState.FIRED, DeadlineState.DONE):
        return counted
    return _at_once(replace(counted, state=DeadlineState.PENDING, running_since=at, paused_at=None), at, policy)


def _at_once(deadline: Deadline, at: datetime, policy: EscalationPolicy) -> Deadline:
    """A criterion besides time is met: due now, if the clock runs and there is a level to go to."""
    if deadline.state is not DeadlineState.PENDING or policy.next_level(deadline.level) is None:
        return deadline
    return replace(deadline, due_at=min(deadline.due_at, at), warn_at=None)


def paused(deadline: Deadline, at: datetime, policy: EscalationPolicy) -> Deadline | None:
    """The ticket waits on others: the clocks stop, and the wait is timed for the metrics."""
    if deadline.paused_at is not None:
        return None  # already waiting
    waiting = replace(deadline, paused_at=at)
    calendar = policy.timing(deadline.facts).calendar
    if deadline.update_since is not None:
        used = deadline.update_used_s + calendar.between(deadline.update_since, at)
        waiting = replace(waiting, update_since=None, update_used_s=used)
    if deadline.state is not DeadlineState.PENDING or deadline.running_since is None:
        return waiting  # answered or at the top: no first-response clock to stop
    used = deadline.consumed_s + calendar.between(deadline.running_since, at)
    return replace(waiting, state=DeadlineState.PAUSED, running_since=None, consumed_s=used, warn_at=None)


def resumed(deadline: Deadline, at: datetime, policy: EscalationPolicy) -> Deadline | None:
    if deadline.paused_at is None:
        return None
    waited = deadline.paused_total_s + max(0.0, (at - deadline.paused_at).total_seconds())
    business = deadline.paused_business_s + policy.timing(deadline.facts).calendar.between(deadline.paused_at, at)
    back = replace(deadline, paused_at=None, paused_total_s=waited, paused_business_s=business)
    if back.responded_at is not None and back.resolved_at is None:
        back = replace(back, update_since=at)  # the next update is owed again, with the time already used
    if deadline.state is not DeadlineState.PAUSED:
        return back
    return retimed(replace(back, state=DeadlineState.PENDING, running_since=at), policy)


def _opened(deadline: Deadline | None, event: TicketOpened, policy: EscalationPolicy) -> Deadline | None:
    if deadline is not None:
        return None  # the ticket is already known; its opening never restarts the clock
    first = policy.levels[0]
    state = DeadlineState.PENDING if policy.next_level(first.number) else DeadlineState.DONE
    customer = event.data.customer
    started = Deadline(
        ticket_id=ticket_id_of(event),
        number=event.data.number,
        level=first.number,
        queue=None,
        due_at=event.occurred_at,
        state=DeadlineState.PENDING,
        correlation_id=event.correlation_id,
        customer_id=customer.customer_id,
        vip=customer.vip,
        components=tuple(event.data.components),
        running_since=event.occurred_at,
        opened_at=event.occurred_at,
    )
    timed = retimed(started, policy)
    return timed if state is DeadlineState.PENDING else replace(timed, state=state)


def _escalated(deadline: Deadline, event: TicketEscalated, policy: EscalationPolicy) -> Deadline | None:
    if event.data.level <= deadline.level:
        return None  # never back down, and never hold a second deadline for the same level
    # escalated_to too: the next breach goes one level above this one, whoever sent it here.
    moved = replace(
        deadline,
        level=event.data.level,
        queue=event.data.queue,
        escalated_to=max(deadline.escalated_to, event.data.level),
    )
    if not deadline.open:
        return moved  # answered or resolved meanwhile: record the level, start no clock
    if policy.next_level(event.data.level) is None:
        return replace(moved, state=DeadlineState.DONE, running_since=None, warn_at=None)
    # The new level gets the whole target again, and its warnings, from the moment the ticket reached it.
    restarted = replace(
        moved, state=DeadlineState.PENDING, running_since=event.occurred_at, consumed_s=0.0, warned=0
    )
    return retimed(restarted, policy)


def ticket_id_of(event: Envelope[Any]) -> uuid.UUID:
    if event.ticket_id is None:
        raise ValueError(f"{event.type} {event.event_id} carries no ticket_id")
    return event.ticket_id
