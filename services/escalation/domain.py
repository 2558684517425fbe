"""The escalation rules, in plain Python: levels, SLA clocks and how ticket events move them.

A ticket has one escalation clock at a time: the first-response target of
its SLA policy, counted in business time on the policy's calendar, from the
moment the ticket reached its current level. If nobody claims the ticket (or
is assigned it) before the target, it escalates to the next level, and the
clock starts again there. The clock pauses while the ticket waits on the
customer or a third party and resumes when they answer, carrying the
business time already used.

``apply`` says how each ticket event changes the clock; ``escalation_due``
says what to do when it passes. Both are pure: the caller loads and stores the
deadline and publishes the result.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from contracts.envelope import Envelope
from contracts.tickets import (
    TicketAssigned,
    TicketClaimed,
    TicketCustomerReplied,
    TicketEscalated,
    TicketOpened,
    TicketPrioritised,
    TicketResolved,
    TicketRouted,
)
from services.escalation.calendar import TWENTY_FOUR_SEVEN, BusinessCalendar
from services.escalation.sla import (
    DEFAULT_PRIORITY,
    EscalationCriteria,
    SlaPolicies,
    TicketFacts,
)
from services.escalation.status import (
    PAUSING_STATUSES,
    StatusChange,
    is_reopening,
    status_change,
)

ESCALATION_NAMESPACE = uuid.UUID("5b1f3c2e-8a4d-4f0e-9c6b-2d7e1a9f4b30")
"""Namespace of the ids escalation derives: the same ticket and level always give the same id."""

OVERRIDE_POLICY = "override"
"""The policy name a deadline carries when ESCALATION_UNCLAIMED_AFTER_S replaces the policies' targets."""


@dataclass(frozen=True)
class Contact:
    """One more way a level hears of an escalation, besides its e-mail: notify sends it by ``method``."""

    method: str  # sms, pager, phone, alarm, flag (contracts.notifications.Method)
    phone: str | None = None
    id: str | None = None  # a pager id, an alarm name...
    email: str | None = None


@dataclass(frozen=True)
class Level:
    """One support level: where an escalated ticket goes and who hears of it."""

    number: int
    name: str
    queue: str | None  # None for level 1: the queue routing chose
    email: str
    notify: tuple[Contact, ...] = ()
    agent: str | None = None  # a named on-call agent: notified by name (recipient kind "agent")


@dataclass(frozen=True)
class Timing:
    """How a ticket's first-response clock is counted: the target, the calendar, and the policy they came from."""

    policy: str
    target: timedelta
    calendar: BusinessCalendar
    warn_at_percent: tuple[int, ...] = ()


@dataclass(frozen=True)
class EscalationPolicy:
    levels: tuple[Level, ...]
    unclaimed_after: timedelta | None = None  # set: every ticket gets this target, counted 24x7 (demos, tests)
    sla: SlaPolicies | None = None

    def __post_init__(self) -> None:
        if self.unclaimed_after is None and self.sla is None:
            raise ValueError("an escalation policy needs SLA policies or a fixed unclaimed_after")

    def level(self, number: int) -> Level | None:
        return next((lvl for lvl in self.levels if lvl.number == number), None)

    def next_level(self, number: int) -> Level | None:
        return self.level(number + 1)

    @property
    def criteria(self) -> EscalationCriteria:
        return self.sla.criteria if self.sla is not None else EscalationCriteria()

    def timing(self, facts: TicketFacts) -> Timing:
        if self.unclaimed_after is not None or self.sla is None:
            return Timing(OVERRIDE_POLICY, self.unclaimed_after or timedelta(0), TWENTY_FOUR_SEVEN)
        chosen = self.sla.for_ticket(facts)
        return Timing(chosen.name, chosen.targets.first_response, chosen.calendar, chosen.warn_at_percent)


class DeadlineState(StrEnum):
    PENDING = "pending"  # the ticket escalates when due_at passes
    PAUSED = "paused"  # waiting on the customer or a third party: the clock stands still
    FIRED = "fired"  # the escalation was sent; waiting for ticket.escalated
    CANCELLED = "cancelled"  # claimed, assigned or resolved: nothing more to escalate
    DONE = "done"  # at the top level, unclaimed: nowhere left to escalate to


OPEN_STATES = (DeadlineState.PENDING, DeadlineState.PAUSED, DeadlineState.FIRED)


@dataclass(frozen=True)
class Deadline:
    ticket_id: uuid.UUID
    number: str
    level: int
    queue: str | None
    due_at: datetime
    state: DeadlineState
    correlation_id: str | None = None
    # What the SLA policy is chosen by (see sla.TicketFacts).
    priority: int = DEFAULT_PRIORITY
    customer_id: str | None = None
    vip: bool = False
    components: tuple[str, ...] = ()
    # The clock: business time used before the current run, and when the current run began (None: not running).
    running_since: datetime | None = None
    consumed_s: float = 0.0
    policy: str | None = None
    # Warnings at this level: how many of the policy's percentages were sent, and when the next one is due.
    warned: int = 0
    warn_at: datetime | None = None
    # For the SLA metrics: when the ticket opened, and the wall time it spent waiting on others.
    opened_at: datetime | None = None
    paused_at: datetime | None = None
    paused_total_s: float = 0.0
    # For the escalation criteria besides time.
    unanswered: int = 0  # customer replies since the ticket was last claimed or assigned
    reopened: int = 0
    # For the resolution deadline: business time spent waiting on others, and when the ticket was resolved.
    paused_business_s: float = 0.0
    resolved_at: datetime | None = None

    @property
    def next_at(self) -> datetime:
        """When the timer must look at this deadline next: its next warning, else its breach."""
        return min(self.warn_at, self.due_at) if self.warn_at is not None else self.due_at

    @property
    def open(self) -> bool:
        """Still unclaimed and unresolved."""
        return self.state in OPEN_STATES

    @property
    def facts(self) -> TicketFacts:
        return TicketFacts(self.priority, self.customer_id, self.vip, self.queue, self.components)


MOVES_DEADLINES: tuple[type[Envelope[Any]], ...] = (
    TicketOpened,
    TicketPrioritised,
    TicketRouted,
    TicketClaimed,
    TicketAssigned,
    TicketResolved,
    TicketEscalated,
    TicketCustomerReplied,
)
"""The ticket events that can move a deadline, besides ``ticket.status_changed`` (see ``status.py``);
``apply`` ignores every other one (a new event type that should move deadlines is added here and in ``apply``)."""


def moves_deadlines(event: Envelope[Any]) -> bool:
    return isinstance(event, MOVES_DEADLINES) or status_change(event) is not None or is_reopening(event)


@dataclass(frozen=True)
class Measure:
    """One SLA measurement an event completes: seconds from opening, less the time spent waiting on others."""

    kind: str  # first_response | resolution
    seconds: float
    priority: int
    queue: str


def measure(deadline: Deadline | None, event: Envelope[Any]) -> Measure | None:
    """What ``event`` completes for the metrics, given the deadline before it."""
    if deadline is None or deadline.opened_at is None:
        return None
    if isinstance(event, (TicketClaimed, TicketAssigned)) and deadline.open:
        kind = "first_response"
    elif isinstance(event, TicketResolved):
        kind = "resolution"
    else:
        return None
    waited = deadline.paused_total_s
    if deadline.paused_at is not None:
        waited += (event.occurred_at - deadline.paused_at).total_seconds()
    seconds = max(0.0, (event.occurred_at - deadline.opened_at).total_seconds() - waited)
    return Measure(kind, seconds, deadline.priority, deadline.queue or "")


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
        ticket_id = _ticket_id(event)
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
        return status_changed(deadline, change, event.occurred_at, policy) if deadline is not None else None
    if is_reopening(event):
        return reopened(deadline, event.occurred_at, policy) if deadline is not None else None
    if not isinstance(event, MOVES_DEADLINES):
        return None  # the consumer skips these events without reading anything
    if isinstance(event, TicketOpened):
        return _opened(deadline, event, policy)
    if deadline is None:
        return None  # an event for a ticket whose opening we never saw: nothing to hold
    after = _moved(deadline, event, policy)
    return after if after != deadline else None


def _moved(deadline: Deadline, event: Envelope[Any], policy: EscalationPolicy) -> Deadline | None:
    if isinstance(event, TicketPrioritised):
        return retimed(replace(deadline, priority=event.data.priority), policy)
    if isinstance(event, TicketRouted):
        return retimed(replace(deadline, queue=event.data.queue), policy)
    if isinstance(event, (TicketClaimed, TicketAssigned, TicketResolved)):
        # An assignment counts as a first response: the ticket has an owner who will answer.
        if isinstance(event, TicketResolved):
            deadline = replace(deadline, resolved_at=event.occurred_at)
        if not deadline.open:
            return replace(deadline, unanswered=0)
        return replace(deadline, state=DeadlineState.CANCELLED, running_since=None, warn_at=None, unanswered=0)
    if isinstance(event, TicketCustomerReplied):
        replied = replace(deadline, unanswered=deadline.unanswered + 1)
        replied = resumed(replied, event.occurred_at, policy) or replied
        limit = policy.criteria.customer_replies_unanswered
        return _at_once(replied, event.occurred_at, policy) if limit and replied.unanswered >= limit else replied
    if isinstance(event, TicketEscalated):
        return _escalated(deadline, event, policy)
    return None


def status_changed(
    deadline: Deadline, change: StatusChange, at: datetime, policy: EscalationPolicy
) -> Deadline | None:
    """Waiting on the customer or a third party stops the clock; any other status restarts it."""
    if change.status in PAUSING_STATUSES:
        return paused(deadline, at, policy)
    return resumed(deadline, at, policy)


def reopened(deadline: Deadline, at: datetime, policy: EscalationPolicy) -> Deadline:
    """Counted; reopened often enough, the ticket escalates at once, even if someone has it."""
    counted = replace(deadline, reopened=deadline.reopened + 1, resolved_at=None)
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
    """The ticket waits on others: the clock (if running) stops, and the wait is timed for the metrics."""
    if deadline.paused_at is not None:
        return None  # already waiting
    waiting = replace(deadline, paused_at=at)
    if deadline.state is not DeadlineState.PENDING or deadline.running_since is None:
        return waiting  # claimed or at the top: no clock to stop, but resolution time still leaves the wait out
    calendar = policy.timing(deadline.facts).calendar
    used = deadline.consumed_s + calendar.between(deadline.running_since, at)
    return replace(waiting, state=DeadlineState.PAUSED, running_since=None, consumed_s=used, warn_at=None)


def resumed(deadline: Deadline, at: datetime, policy: EscalationPolicy) -> Deadline | None:
    if deadline.paused_at is None:
        return None
    waited = deadline.paused_total_s + max(0.0, (at - deadline.paused_at).total_seconds())
    business = deadline.paused_business_s + policy.timing(deadline.facts).calendar.between(deadline.paused_at, at)
    back = replace(deadline, paused_at=None, paused_total_s=waited, paused_business_s=business)
    if deadline.state is not DeadlineState.PAUSED:
        return back
    return retimed(replace(back, state=DeadlineState.PENDING, running_since=at), policy)


def retimed(deadline: Deadline, policy: EscalationPolicy) -> Deadline:
    """``deadline`` with its due time recounted under the policy its facts now choose."""
    timing = policy.timing(deadline.facts)
    if deadline.state is not DeadlineState.PENDING or deadline.running_since is None:
        return replace(deadline, policy=timing.policy, warn_at=None)
    left = max(0.0, timing.target.total_seconds() - deadline.consumed_s)
    due_at = timing.calendar.add(deadline.running_since, left)
    return replace(deadline, policy=timing.policy, due_at=due_at, warn_at=_next_warning(deadline, timing))


def _next_warning(deadline: Deadline, timing: Timing) -> datetime | None:
    """When the first warning not yet sent at this level is due (None: all sent, or none configured)."""
    assert deadline.running_since is not None
    for percent in timing.warn_at_percent[deadline.warned :]:
        at_s = timing.target.total_seconds() * percent / 100
        return timing.calendar.add(deadline.running_since, max(0.0, at_s - deadline.consumed_s))
    return None


def _opened(deadline: Deadline | None, event: TicketOpened, policy: EscalationPolicy) -> Deadline | None:
    if deadline is not None:
        return None  # the ticket is already known; its opening never restarts the clock
    first = policy.levels[0]
    state = DeadlineState.PENDING if policy.next_level(first.number) else DeadlineState.DONE
    customer = event.data.customer
    started = Deadline(
        ticket_id=_ticket_id(event),
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
    return replace(retimed(started, policy), state=state)


def _escalated(deadline: Deadline, event: TicketEscalated, policy: EscalationPolicy) -> Deadline | None:
    if event.data.level <= deadline.level:
        return None  # never back down, and never hold a second deadline for the same level
    moved = replace(deadline, level=event.data.level, queue=event.data.queue)
    if not deadline.open:
        return moved  # claimed or resolved meanwhile: record the level, start no clock
    if policy.next_level(event.data.level) is None:
        return replace(moved, state=DeadlineState.DONE, running_since=None, warn_at=None)
    # The new level gets the whole target again, and its warnings, from the moment the ticket reached it.
    restarted = replace(
        moved, state=DeadlineState.PENDING, running_since=event.occurred_at, consumed_s=0.0, warned=0
    )
    return retimed(restarted, policy)


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
    target = policy.timing(deadline.facts).target
    return Escalation(
        deadline=deadline,
        to_level=to_level,
        command_id=escalate_command_id(deadline.ticket_id, to_level.number),
        notification_id=escalation_notification_id(deadline.ticket_id, to_level.number),
        reason=_reason(deadline, policy, target),
    )


@dataclass(frozen=True)
class Warning:
    """A warning point of the target passed: the level the ticket is at hears of it."""

    deadline: Deadline  # as it was when the warning fell due
    after: Deadline  # with this warning counted and the next one timed
    level: Level
    percent: int
    notification_id: uuid.UUID


def warning_due(deadline: Deadline, policy: EscalationPolicy, now: datetime) -> Warning | None:
    """The warning a pending deadline owes at ``now``; None when none is due or the breach comes first."""
    if deadline.state is not DeadlineState.PENDING or deadline.warn_at is None or deadline.warn_at > now:
        return None
    if deadline.due_at <= now:
        return None  # the escalation says it all
    level = policy.level(deadline.level)
    timing = policy.timing(deadline.facts)
    if level is None or deadline.warned >= len(timing.warn_at_percent):
        return None
    percent = timing.warn_at_percent[deadline.warned]
    after = retimed(replace(deadline, warned=deadline.warned + 1), policy)
    return Warning(deadline, after, level, percent, warning_notification_id(deadline.ticket_id, level.number, percent))


def warning_notification_id(ticket_id: uuid.UUID, level: int, percent: int) -> uuid.UUID:
    return uuid.uuid5(ESCALATION_NAMESPACE, f"warn:{ticket_id}:{level}:{percent}")


def escalate_command_id(ticket_id: uuid.UUID, to_level: int) -> uuid.UUID:
    # The id names the ticket and the level, not the moment: a crash between publishing and
    # recording "fired" republishes the same command, which the ticket service applies once.
    return uuid.uuid5(ESCALATION_NAMESPACE, f"escalate:{ticket_id}:{to_level}")


def escalation_notification_id(ticket_id: uuid.UUID, to_level: int) -> uuid.UUID:
    return uuid.uuid5(ESCALATION_NAMESPACE, f"notify-escalation:{ticket_id}:{to_level}")


def contact_notification_id(ticket_id: uuid.UUID, to_level: int, index: int, method: str) -> uuid.UUID:
    return uuid.uuid5(ESCALATION_NAMESPACE, f"notify-escalation:{ticket_id}:{to_level}:{index}:{method}")


def _ticket_id(event: Envelope[Any]) -> uuid.UUID:
    if event.ticket_id is None:
        raise ValueError(f"{event.type} {event.event_id} carries no ticket_id")
    return event.ticket_id


def _reason(deadline: Deadline, policy: EscalationPolicy, target: timedelta) -> str:
    criteria = policy.criteria
    if criteria.customer_replies_unanswered and deadline.unanswered >= criteria.customer_replies_unanswered:
        return f"{deadline.unanswered} customer replies unanswered at level {deadline.level}"
    if criteria.reopened and deadline.reopened >= criteria.reopened:
        return f"reopened {deadline.reopened} times (at level {deadline.level})"
    return (
        f"unclaimed past its first-response target ({_spoken(target)}, policy {deadline.policy or '?'}) "
        f"at level {deadline.level}"
    )


def _spoken(target: timedelta) -> str:
    minutes = target.total_seconds() / 60
    return f"{minutes / 60:g} h" if minutes >= 120 else f"{minutes:g} min"
