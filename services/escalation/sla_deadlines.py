"""What escalation tells everyone about a ticket's deadlines: ``sla.deadlines_changed``.

Published whenever a ticket's clock changes (set, re-timed, paused, resumed,
met, breached), keyed by ticket id and carrying the ticket's whole list, so
the latest message per ticket is the truth (the topic is compacted); the
ticket service shows it in its query API. The id derives from the cause (the
last ticket event applied, or the escalation command), so a redelivery
republishes the same message.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from contracts.sla import Deadline as SlaDeadline
from contracts.sla import SlaDeadlinesChanged, SlaDeadlinesChangedData
from contracts.topics import SLA_DEADLINES
from runtime.kafka import Outgoing
from services.escalation.domain import (
    ESCALATION_NAMESPACE,
    Deadline,
    DeadlineState,
    EscalationPolicy,
)

_STATE = {
    DeadlineState.PENDING: "running",
    DeadlineState.PAUSED: "paused",
    DeadlineState.FIRED: "breached",
    DeadlineState.CANCELLED: "met",  # claimed, assigned or resolved before the target
    DeadlineState.DONE: "cancelled",  # at the top level: no escalation left to run
}


def deadlines_changed(
    deadline: Deadline, policy: EscalationPolicy, cause: uuid.UUID, now: datetime
) -> Outgoing:
    timing = policy.timing(deadline.facts)
    data = SlaDeadlinesChangedData(
        number=deadline.number,
        policy=deadline.policy or timing.policy,
        calendar=timing.calendar.name,
        deadlines=ticket_deadlines(deadline, policy, now),
    )
    message = SlaDeadlinesChanged(
        event_id=uuid.uuid5(ESCALATION_NAMESPACE, f"sla-deadlines:{deadline.ticket_id}:{cause}"),
        ticket_id=deadline.ticket_id,
        occurred_at=now,
        correlation_id=deadline.correlation_id or str(deadline.ticket_id),
        causation_id=str(cause),
        data=data,
    )
    return Outgoing(SLA_DEADLINES, message, str(deadline.ticket_id))


def ticket_deadlines(deadline: Deadline, policy: EscalationPolicy, now: datetime) -> list[SlaDeadline]:
    """The ticket's deadlines as the contract lists them: at level 1 its first response, its escalation clock,
    and its resolution."""
    timing = policy.timing(deadline.facts)
    state = _STATE[deadline.state]
    paused = deadline.state is DeadlineState.PAUSED
    target_s = timing.target.total_seconds()
    to_level = policy.next_level(deadline.level)
    common = {
        "due_at": None if paused else deadline.due_at,
        "remaining_s": max(0.0, target_s - deadline.consumed_s) if paused else None,
        "warn_at": _warn_at(deadline, policy) if state == "running" else None,
        "state": state,
        "breached_at": deadline.due_at if deadline.state is DeadlineState.FIRED else None,
    }
    listed = []
    if deadline.level == 1:
        listed.append(SlaDeadline(kind="first_response", **common))  # type: ignore[arg-type]
    if to_level is not None or deadline.state is DeadlineState.FIRED:
        listed.append(SlaDeadline(kind="escalation", level=to_level.number if to_level else None, **common))  # type: ignore[arg-type]
    resolution = _resolution(deadline, policy, now)
    if resolution is not None:
        listed.append(resolution)
    return listed


def _resolution(deadline: Deadline, policy: EscalationPolicy, now: datetime) -> SlaDeadline | None:
    """The resolution target, counted from the opening on the policy's calendar, less the time spent waiting.

    Shown, not escalated: only the first-response clock moves a ticket up a level for now.
    """
    if policy.sla is None or policy.unclaimed_after is not None or deadline.opened_at is None:
        return None
    chosen = policy.sla.for_ticket(deadline.facts)
    target = chosen.targets.resolution
    if target is None:
        return None
    calendar, target_s = chosen.calendar, target.total_seconds()
    if deadline.paused_at is not None and deadline.resolved_at is None:
        used = calendar.between(deadline.opened_at, deadline.paused_at) - deadline.paused_business_s
        return SlaDeadline(kind="resolution", due_at=None, remaining_s=max(0.0, target_s - used), state="paused")
    # The waits lie between the opening and now, so they push the due time out by exactly their business time.
    due = calendar.add(deadline.opened_at, target_s + deadline.paused_business_s)
    if deadline.resolved_at is not None:
        met = deadline.resolved_at <= due
        return SlaDeadline(kind="resolution", due_at=due, state="met" if met else "breached",
                           met_at=deadline.resolved_at if met else None, breached_at=None if met else due)
    breached = due <= now
    return SlaDeadline(kind="resolution", due_at=due, state="breached" if breached else "running",
                       breached_at=due if breached else None)


def _warn_at(deadline: Deadline, policy: EscalationPolicy) -> datetime | None:
    if deadline.running_since is None or policy.sla is None or policy.unclaimed_after is not None:
        return None
    chosen = policy.sla.for_ticket(deadline.facts)
    warn_after = chosen.warn_after(chosen.targets.first_response)
    if warn_after is None or warn_after.total_seconds() <= deadline.consumed_s:
        return None
    return chosen.calendar.add(deadline.running_since, warn_after.total_seconds() - deadline.consumed_s)
