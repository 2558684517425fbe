"""A ticket's deadlines, as escalation holds them: one record per ticket with its three SLA clocks.

- The **first-response** clock (``state``, ``due_at``, ``warn_at``...) runs
  from the moment the ticket reached its current level until someone claims
  it, is assigned it, or replies in public; passed, the ticket moves up a
  level and the clock starts again there.
- The **next-update** clock (``update_*``) runs from the first response and
  starts again at every public reply by an agent, until the ticket is resolved.
- The **resolution** clock (``resolution_*``) runs from the opening until the
  ticket is resolved.

All three stand still while the ticket waits on the customer or a third party.
The functions here recount the due and warning times after a change; which
events change what is ``ticket_events.py``, what a passed time asks for is
``breaches.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from services.escalation.domain.policy import EscalationPolicy, Target, Timing
from services.escalation.sla import DEFAULT_PRIORITY, TicketFacts


class DeadlineState(StrEnum):
    """The first-response clock's state."""

    PENDING = "pending"  # the ticket escalates when due_at passes
    PAUSED = "paused"  # waiting on the customer or a third party: the clock stands still
    FIRED = "fired"  # the escalation was sent; waiting for ticket.escalated
    CANCELLED = "cancelled"  # claimed, assigned, answered in public or resolved: the first response is given
    DONE = "done"  # at the top level, unanswered: nowhere left to escalate to


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
    # The first-response clock: business time used before the current run, and when the run began (None: stopped).
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
    unanswered: int = 0  # customer replies since the ticket was last claimed, assigned or answered
    reopened: int = 0
    # For the resolution clock: business time spent waiting on others, and when the ticket was resolved.
    paused_business_s: float = 0.0
    resolved_at: datetime | None = None
    # The next-update clock: when the first response came, and its current run.
    responded_at: datetime | None = None
    update_run: int = 0  # counts the clock's runs: each public reply (and reopening) starts one
    update_since: datetime | None = None  # None: not running (no response yet, waiting on others, or resolved)
    update_used_s: float = 0.0
    update_warned: int = 0
    update_breached: bool = False
    update_due_at: datetime | None = None
    update_warn_at: datetime | None = None
    # The resolution clock's warnings and breach (its time counts from opened_at, less the waits).
    resolution_warned: int = 0
    resolution_breached: bool = False
    resolution_due_at: datetime | None = None  # None: not running (waiting on others, resolved, or no target)
    resolution_warn_at: datetime | None = None
    # The highest level escalation has sent the ticket to: each breach moves it one level above.
    escalated_to: int = 0
    # The store's count of writes to this record: the timer writes only if nobody wrote in between.
    revision: int = 0

    @property
    def next_at(self) -> datetime | None:
        """When the timer must look at this ticket next: its earliest warning or breach not yet sent."""
        times = []
        if self.state is DeadlineState.PENDING:
            times += [self.due_at, self.warn_at]
        if not self.update_breached:
            times += [self.update_due_at, self.update_warn_at]
        if not self.resolution_breached:
            times += [self.resolution_due_at, self.resolution_warn_at]
        return min((t for t in times if t is not None), default=None)

    @property
    def open(self) -> bool:
        """Still waiting for its first response, and unresolved."""
        return self.state in OPEN_STATES

    @property
    def facts(self) -> TicketFacts:
        return TicketFacts(self.priority, self.customer_id, self.vip, self.queue, self.components)

    @property
    def top_level(self) -> int:
        """The level the ticket is at, or was last sent to."""
        return max(self.level, self.escalated_to)


def retimed(deadline: Deadline, policy: EscalationPolicy) -> Deadline:
    """``deadline`` with every due and warning time recounted under the policy its facts now choose."""
    timing = policy.timing(deadline.facts)
    if deadline.state is not DeadlineState.PENDING or deadline.running_since is None:
        first = replace(deadline, policy=timing.policy, warn_at=None)
    else:
        left = max(0.0, timing.target.total_seconds() - deadline.consumed_s)
        due_at = timing.calendar.add(deadline.running_since, left)
        warn_at = _warning_at(timing, deadline.warned, deadline.running_since, deadline.consumed_s)
        first = replace(deadline, policy=timing.policy, due_at=due_at, warn_at=warn_at)
    return other_clocks_timed(first, policy)


def other_clocks_timed(deadline: Deadline, policy: EscalationPolicy) -> Deadline:
    """``deadline`` with its next-update and resolution times recounted (the first-response clock as it is)."""
    timed = (*_update_times(deadline, policy), *_resolution_times(deadline, policy))
    current = (deadline.update_due_at, deadline.update_warn_at, deadline.resolution_due_at, deadline.resolution_warn_at)
    if timed == current:
        return deadline  # most events move neither clock: no copy of the record (the consumer's hot path)
    update_due_at, update_warn_at, resolution_due_at, resolution_warn_at = timed
    return replace(
        deadline,
        update_due_at=update_due_at,
        update_warn_at=update_warn_at,
        resolution_due_at=resolution_due_at,
        resolution_warn_at=resolution_warn_at,
    )


def _update_times(deadline: Deadline, policy: EscalationPolicy) -> tuple[datetime | None, datetime | None]:
    """The next update's due and next warning time; None while the clock does not run."""
    since = deadline.update_since
    if since is None:
        return None, None
    timing = policy.timing_of(Target.NEXT_UPDATE, deadline.facts)
    if timing is None:
        return None, None
    used = deadline.update_used_s
    due_at = timing.calendar.add(since, max(0.0, timing.target.total_seconds() - used))
    return due_at, _warning_at(timing, deadline.update_warned, since, used)


def _resolution_times(deadline: Deadline, policy: EscalationPolicy) -> tuple[datetime | None, datetime | None]:
    """The resolution's due and next warning time; None while the clock does not run."""
    opened = deadline.opened_at
    if opened is None or deadline.resolved_at is not None or deadline.paused_at is not None:
        return None, None
    timing = policy.timing_of(Target.RESOLUTION, deadline.facts)
    if timing is None:
        return None, None
    # The waits lie between the opening and now, so they push the due time out by exactly their business time.
    waited = deadline.paused_business_s
    due_at = timing.calendar.add(opened, timing.target.total_seconds() + waited)
    return due_at, _warning_at(timing, deadline.resolution_warned, opened, -waited)


def _warning_at(timing: Timing, warned: int, since: datetime, used_s: float) -> datetime | None:
    """When the first warning not yet sent is due (None: all sent, or none configured)."""
    at_s = timing.warning_after(warned)
    if at_s is None:
        return None
    return timing.calendar.add(since, max(0.0, at_s - used_s))


def resolution_used_s(deadline: Deadline, policy: EscalationPolicy, at: datetime) -> float:
    """Business seconds of the resolution target used by ``at`` (the waits left out)."""
    timing = policy.timing_of(Target.RESOLUTION, deadline.facts)
    if timing is None or deadline.opened_at is None:
        return 0.0
    end = deadline.paused_at or deadline.resolved_at or at
    return max(0.0, timing.calendar.between(deadline.opened_at, end) - deadline.paused_business_s)
