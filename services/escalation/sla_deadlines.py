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
from services.escalation.domain.deadline import (
    Deadline,
    DeadlineState,
    resolution_used_s,
)
from services.escalation.domain.message_ids import ESCALATION_NAMESPACE
from services.escalation.domain.policy import EscalationPolicy, Target

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
    its next update (once the first response is given) and its resolution."""
    timing = policy.timing(deadline.facts)
    state = _STATE[deadline.state]
    paused = deadline.state is DeadlineState.PAUSED
    target_s = timing.target.total_seconds()
    to_level = policy.next_level(deadline.level)
    common = {
        "due_at": None if paused else deadline.due_at,
        "remaining_s": max(0.0, target_s - deadline.consumed_s) if paused else None,
        "warn_at": deadline.warn_at if state == "running" else None,
        "state": state,
        "breached_at": deadline.due_at if deadline.state is DeadlineState.FIRED else None,
    }
    listed = []
    if deadline.level == 1:
        listed.append(SlaDeadline(kind="first_response", **common))  # type: ignore[arg-type]
    if to_level is not None or deadline.state is DeadlineState.FIRED:
        listed.append(SlaDeadline(kind="escalation", level=to_level.number if to_level else None, **common))  # type: ignore[arg-type]
    for found in (_next_update(deadline, policy), _resolution(deadline, policy, now)):
        if found is not None:
            listed.append(found)
    return listed


def _next_update(deadline: Deadline, policy: EscalationPolicy) -> SlaDeadline | None:
    """Owed from the first response until the resolution; every public reply starts it again."""
    timing = policy.timing_of(Target.NEXT_UPDATE, deadline.facts)
    if timing is None or deadline.responded_at is None or deadline.resolved_at is not None:
        return None
    if deadline.update_breached:
        return SlaDeadline(kind="next_update", due_at=deadline.update_due_at, state="breached",
                           breached_at=deadline.update_due_at)
    if deadline.update_since is None:  # waiting on the customer or a third party
        left = max(0.0, timing.target.total_seconds() - deadline.update_used_s)
        return SlaDeadline(kind="next_update", due_at=None, remaining_s=left, state="paused")
    return SlaDeadline(kind="next_update", due_at=deadline.update_due_at, warn_at=deadline.update_warn_at,
                       state="running")


def _resolution(deadline: Deadline, policy: EscalationPolicy, now: datetime) -> SlaDeadline | None:
    """The resolution target, counted from the opening on the policy's calendar, less the time spent waiting."""
    timing = policy.timing_of(Target.RESOLUTION, deadline.facts)
    if timing is None or deadline.opened_at is None:
        return None
    target_s = timing.target.total_seconds()
    if deadline.paused_at is not None and deadline.resolved_at is None:
        left = max(0.0, target_s - resolution_used_s(deadline, policy, now))
        return SlaDeadline(kind="resolution", due_at=None, remaining_s=left, state="paused")
    # The waits lie between the opening and now, so they push the due time out by exactly their business time.
    due = timing.calendar.add(deadline.opened_at, target_s + deadline.paused_business_s)
    if deadline.resolved_at is not None:
        met = deadline.resolved_at <= due
        return SlaDeadline(kind="resolution", due_at=due, state="met" if met else "breached",
                           met_at=deadline.resolved_at if met else None, breached_at=None if met else due)
    breached = deadline.resolution_breached or due <= now
    return SlaDeadline(kind="resolution", due_at=due, warn_at=None if breached else deadline.resolution_warn_at,
                       state="breached" if breached else "running", breached_at=due if breached else None)
