"""What a passed time asks for: a warning to the ticket's level, or an escalation to the next one.

``on_time`` is the timer's decision for one ticket at ``now``: the warnings
owed (at the policy's percentages of each target) and, if a target passed,
one escalation. Each breach moves the ticket ONE level up, above the highest
level it is at or was sent to: the first-response breach of an unanswered
ticket takes it from L1 to L2; a resolution breach later takes it on to L3.
When two targets pass in the same instant (the service was down across
both), they make one step together, with both reasons: a ticket never
skips a level. The escalation's ids name the ticket and the level only, so
the same level is never sent twice, whichever target breached.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.escalation.domain.deadline import (
    Deadline,
    DeadlineState,
    other_clocks_timed,
    retimed,
)
from services.escalation.domain.message_ids import (
    escalate_command_id,
    escalation_notification_id,
    sla_breach_id,
    target_warning_id,
    warning_notification_id,
)
from services.escalation.domain.policy import EscalationPolicy, Level, Target


@dataclass(frozen=True)
class Escalation:
    """What a passed target asks for: the ticket moves to ``to_level``."""

    deadline: Deadline
    to_level: Level
    command_id: uuid.UUID
    notification_id: uuid.UUID
    reason: str
    targets: tuple[Target, ...] = (Target.FIRST_RESPONSE,)

    @property
    def due_at(self) -> datetime:
        """When the (earliest) breached target was due."""
        return min(_due_at(self.deadline, target) or self.deadline.due_at for target in self.targets)

    @property
    def to_queue(self) -> str:
        """The level's queue; a level that is only its on-call agent leaves the ticket in the queue it is in."""
        return self.to_level.queue or self.deadline.queue or self.to_level.name


@dataclass(frozen=True)
class Warning:
    """A warning point of a target passed: the level the ticket is at hears of it."""

    deadline: Deadline  # as it was when the warning fell due
    after: Deadline  # with this warning counted and the next one timed
    level: Level
    percent: int
    notification_id: uuid.UUID
    target: Target = Target.FIRST_RESPONSE

    @property
    def due_at(self) -> datetime:
        """When the warned target falls due."""
        return _due_at(self.deadline, self.target) or self.deadline.due_at


@dataclass(frozen=True)
class Breach:
    """A target passed, as the SLA figures count it: once per run of the target's clock."""

    breach_id: uuid.UUID
    ticket_id: uuid.UUID
    target: Target
    priority: int
    queue: str
    due_at: datetime


@dataclass(frozen=True)
class Step:
    """The timer's decision for one ticket: what to send, and the deadline to store once it is sent."""

    before: Deadline
    after: Deadline
    escalation: Escalation | None
    warnings: tuple[Warning, ...]
    breached: tuple[Target, ...]

    @property
    def breaches(self) -> tuple[Breach, ...]:
        d = self.before
        return tuple(
            Breach(sla_breach_id(d.ticket_id, target.value, clock_run(d, target)), d.ticket_id, target, d.priority,
                   d.queue or "", _due_at(d, target) or d.due_at)
            for target in self.breached
        )


def on_time(deadline: Deadline, policy: EscalationPolicy, now: datetime) -> Step:
    """Every warning and breach of ``deadline`` due at ``now``, and the deadline with them recorded."""
    breached = _breached(deadline, now)
    after = deadline
    warnings = []
    for target in Target:
        if target in breached:
            continue
        if (warning := _warning(after, target, policy, now)) is not None:
            warnings.append(warning)
            after = warning.after
        elif (unsent := _unaddressed_warning(after, target, policy, now)) is not None:
            after = unsent
    escalation = None
    to_level = policy.next_level(deadline.top_level)
    if breached and to_level is not None:
        escalation = Escalation(
            deadline=deadline,
            to_level=to_level,
            command_id=escalate_command_id(deadline.ticket_id, to_level.number),
            notification_id=escalation_notification_id(deadline.ticket_id, to_level.number),
            reason="; ".join(_reason(deadline, policy, target) for target in breached),
            targets=breached,
        )
        after = replace(after, escalated_to=to_level.number)
    if not breached and not warnings:
        # Due, yet nothing to send: a warning the policies file no longer has (it changed across a
        # restart). Recounted under the file as it is now, so the timer stops picking the ticket up.
        after = retimed(after, policy)
    return Step(deadline, _recorded(after, breached, sent=escalation is not None), escalation, tuple(warnings), breached)


def escalation_due(deadline: Deadline, policy: EscalationPolicy, now: datetime) -> Escalation | None:
    """The escalation a passed target asks for; None if none passed or there is nowhere to go."""
    return on_time(deadline, policy, now).escalation


def warning_due(deadline: Deadline, policy: EscalationPolicy, now: datetime) -> Warning | None:
    """The first-response warning a pending deadline owes at ``now``; None when none is due or the breach comes first."""
    if Target.FIRST_RESPONSE in _breached(deadline, now):
        return None  # the escalation says it all
    return _warning(deadline, Target.FIRST_RESPONSE, policy, now)


def _due_at(deadline: Deadline, target: Target) -> datetime | None:
    if target is Target.NEXT_UPDATE:
        return deadline.update_due_at
    if target is Target.RESOLUTION:
        return deadline.resolution_due_at
    return deadline.due_at


def _breached(deadline: Deadline, now: datetime) -> tuple[Target, ...]:
    passed = []
    if deadline.state is DeadlineState.PENDING and deadline.due_at <= now:
        passed.append(Target.FIRST_RESPONSE)
    if not deadline.update_breached and deadline.update_due_at is not None and deadline.update_due_at <= now:
        passed.append(Target.NEXT_UPDATE)
    if (
        not deadline.resolution_breached
        and deadline.resolution_due_at is not None
        and deadline.resolution_due_at <= now
    ):
        passed.append(Target.RESOLUTION)
    return tuple(passed)


def _recorded(deadline: Deadline, breached: tuple[Target, ...], *, sent: bool) -> Deadline:
    """``deadline`` with its breaches noted, so the timer never sends them again."""
    if Target.FIRST_RESPONSE in breached:
        # Sent: wait for ticket.escalated to start the next level's clock. At the top: nowhere to go.
        state = DeadlineState.FIRED if sent else DeadlineState.DONE
        deadline = replace(deadline, state=state)
    if Target.NEXT_UPDATE in breached:
        deadline = replace(deadline, update_breached=True)
    if Target.RESOLUTION in breached:
        deadline = replace(deadline, resolution_breached=True)
    return deadline


def _warning(deadline: Deadline, target: Target, policy: EscalationPolicy, now: datetime) -> Warning | None:
    level = policy.level(deadline.level)
    timing = policy.timing_of(target, deadline.facts)
    warn_at, warned, run = _warning_clock(deadline, target)
    if level is None or timing is None or warn_at is None or warn_at > now or warned >= len(timing.warn_at_percent):
        return None
    percent = timing.warn_at_percent[warned]
    if target is Target.FIRST_RESPONSE:
        notification_id = warning_notification_id(deadline.ticket_id, level.number, percent)
    else:
        notification_id = target_warning_id(target, deadline.ticket_id, run, percent)
    return Warning(deadline, _counted(deadline, target, warned, policy), level, percent, notification_id, target)


def _unaddressed_warning(
    deadline: Deadline, target: Target, policy: EscalationPolicy, now: datetime
) -> Deadline | None:
    """A warning due at a level the levels file no longer has (it shrank across a restart): counted as sent.

    Nobody is left to hear it; counted, its time moves on, so the timer stops picking the ticket up
    (left due, such rows came back first on every pass and could fill every batch).
    """
    if policy.level(deadline.level) is not None:
        return None
    timing = policy.timing_of(target, deadline.facts)
    warn_at, warned, _ = _warning_clock(deadline, target)
    if timing is None or warn_at is None or warn_at > now or warned >= len(timing.warn_at_percent):
        return None
    return _counted(deadline, target, warned, policy)


def _counted(deadline: Deadline, target: Target, warned: int, policy: EscalationPolicy) -> Deadline:
    """``deadline`` with one more of ``target``'s warnings counted, and the next one timed."""
    if target is Target.FIRST_RESPONSE:
        return retimed(replace(deadline, warned=warned + 1), policy)
    field = "update_warned" if target is Target.NEXT_UPDATE else "resolution_warned"
    return other_clocks_timed(replace(deadline, **{field: warned + 1}), policy)


def clock_run(deadline: Deadline, target: Target) -> int:
    """Which run of the target's clock this is: the level (first response), the update run, the reopenings."""
    if target is Target.FIRST_RESPONSE:
        return deadline.level
    return deadline.update_run if target is Target.NEXT_UPDATE else deadline.reopened


def _warning_clock(deadline: Deadline, target: Target) -> tuple[datetime | None, int, int]:
    """The target's next warning time (None: none to send), the warnings sent, and the clock's run."""
    run = clock_run(deadline, target)
    if target is Target.FIRST_RESPONSE:
        running = deadline.state is DeadlineState.PENDING
        return (deadline.warn_at if running else None), deadline.warned, run
    if target is Target.NEXT_UPDATE:
        warn_at = None if deadline.update_breached else deadline.update_warn_at
        return warn_at, deadline.update_warned, run
    warn_at = None if deadline.resolution_breached else deadline.resolution_warn_at
    return warn_at, deadline.resolution_warned, run


def _reason(deadline: Deadline, policy: EscalationPolicy, target: Target) -> str:
    timing = policy.timing_of(target, deadline.facts)
    spoken = f"{_spoken(timing.target)}, policy {timing.policy}" if timing is not None else "?"
    if target is Target.NEXT_UPDATE:
        return f"no public update within its next-update target ({spoken}) at level {deadline.level}"
    if target is Target.RESOLUTION:
        return f"unresolved past its resolution target ({spoken}) at level {deadline.level}"
    criteria = policy.criteria
    if criteria.customer_replies_unanswered and deadline.unanswered >= criteria.customer_replies_unanswered:
        return f"{deadline.unanswered} customer replies unanswered at level {deadline.level}"
    if criteria.reopened and deadline.reopened >= criteria.reopened:
        return f"reopened {deadline.reopened} times (at level {deadline.level})"
    return (
        f"unclaimed past its first-response target ({_spoken(policy.timing(deadline.facts).target)}, "
        f"policy {deadline.policy or '?'}) at level {deadline.level}"
    )


def _spoken(target: timedelta) -> str:
    minutes = target.total_seconds() / 60
    return f"{minutes / 60:g} h" if minutes >= 120 else f"{minutes:g} min"
