"""The escalation rules: how each ticket event moves a ticket's deadline, and when it escalates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.envelope import new_envelope
from contracts.incidents import Channel, CustomerProfile
from contracts.tickets import (
    TicketClaimed,
    TicketClaimedData,
    TicketEscalated,
    TicketEscalatedData,
    TicketOpened,
    TicketOpenedData,
    TicketPrioritised,
    TicketPrioritisedData,
    TicketResolved,
    TicketResolvedData,
    TicketRouted,
    TicketRoutedData,
)
from services.escalation.domain.breaches import escalation_due
from services.escalation.domain.deadline import Deadline, DeadlineState
from services.escalation.domain.message_ids import (
    escalate_command_id,
    escalation_notification_id,
)
from services.escalation.domain.policy import EscalationPolicy, Level
from services.escalation.domain.ticket_events import apply

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
AFTER = timedelta(minutes=15)
TICKET = uuid.UUID("00000000-0000-4000-8000-000000000012")
LEVELS = (
    Level(1, "L1", None, "l1-oncall@helpdesk.example"),
    Level(2, "L2", "L2-specialists", "l2-oncall@helpdesk.example"),
    Level(3, "L3", "L3-engineering", "l3-oncall@helpdesk.example"),
)
POLICY = EscalationPolicy(LEVELS, AFTER)


def opened(at: datetime = T0) -> Any:
    data = TicketOpenedData(
        number="HD-12", version=1, channel=Channel.EMAIL, channel_message_id="m-1", reported_at=at,
        subject="Printer on fire", description="", customer=CustomerProfile(identified=False, email="c@example.com"),
    )
    return new_envelope(TicketOpened, data, ticket_id=TICKET, occurred_at=at, correlation_id="corr-12")


def routed(queue: str = "hardware") -> Any:
    return new_envelope(TicketRouted, TicketRoutedData(number="HD-12", version=3, queue=queue, rule="r", reason="x"),
                        ticket_id=TICKET, occurred_at=T0)


def claimed() -> Any:
    return new_envelope(TicketClaimed, TicketClaimedData(number="HD-12", version=4, agent_id="a1"), ticket_id=TICKET,
                        occurred_at=T0)


def resolved() -> Any:
    data = TicketResolvedData(number="HD-12", version=5, resolution="fixed", resolved_by="a1")
    return new_envelope(TicketResolved, data, ticket_id=TICKET, occurred_at=T0)


def escalated(level: int, at: datetime) -> Any:
    queue = LEVELS[level - 1].queue or ""
    data = TicketEscalatedData(number="HD-12", version=4, level=level, queue=queue, reason="late")
    return new_envelope(TicketEscalated, data, ticket_id=TICKET, occurred_at=at)


def pending(level: int = 1, due: datetime = T0 + AFTER, queue: str | None = "hardware") -> Deadline:
    return Deadline(TICKET, "HD-12", level, queue, due, DeadlineState.PENDING, "corr-12")


def core(deadline: Deadline | None) -> tuple[Any, ...]:
    """The fields the escalation itself turns on (the SLA bookkeeping is tested in test_escalation_sla_clock)."""
    assert deadline is not None
    return (deadline.ticket_id, deadline.number, deadline.level, deadline.queue, deadline.due_at, deadline.state,
            deadline.correlation_id)


def test_an_opened_ticket_gets_a_level_1_deadline_from_its_opening_time() -> None:
    deadline = apply(None, opened(), POLICY)
    assert core(deadline) == (TICKET, "HD-12", 1, None, T0 + AFTER, DeadlineState.PENDING, "corr-12")
    assert deadline is not None and deadline.running_since == T0


def test_a_second_opening_of_a_known_ticket_does_not_restart_the_clock() -> None:
    assert apply(pending(), opened(T0 + timedelta(hours=1)), POLICY) is None


def test_with_a_single_level_an_opened_ticket_has_nowhere_to_escalate() -> None:
    deadline = apply(None, opened(), EscalationPolicy(LEVELS[:1], AFTER))
    assert deadline is not None and deadline.state is DeadlineState.DONE


def test_routing_remembers_the_queue_and_keeps_the_clock() -> None:
    deadline = apply(pending(queue=None), routed("network"), POLICY)
    assert core(deadline) == core(pending(queue="network"))


def test_events_for_a_ticket_never_opened_here_hold_no_deadline() -> None:
    for event in (routed(), claimed(), resolved(), escalated(2, T0)):
        assert apply(None, event, POLICY) is None


def test_a_claim_cancels_a_pending_or_fired_deadline() -> None:
    for state in (DeadlineState.PENDING, DeadlineState.FIRED):
        deadline = Deadline(TICKET, "HD-12", 1, "hardware", T0, state)
        assert apply(deadline, claimed(), POLICY).state is DeadlineState.CANCELLED  # type: ignore[union-attr]


def test_a_resolution_cancels_the_deadline() -> None:
    assert apply(pending(), resolved(), POLICY).state is DeadlineState.CANCELLED  # type: ignore[union-attr]


def test_claiming_an_already_cancelled_ticket_changes_nothing() -> None:
    cancelled = Deadline(TICKET, "HD-12", 1, "hardware", T0, DeadlineState.CANCELLED)
    assert apply(cancelled, claimed(), POLICY) is None


def test_an_escalation_starts_the_next_levels_clock_from_the_escalation_time() -> None:
    fired = Deadline(TICKET, "HD-12", 1, "hardware", T0 + AFTER, DeadlineState.FIRED, "corr-12")
    at = T0 + AFTER + timedelta(seconds=3)
    deadline = apply(fired, escalated(2, at), POLICY)
    assert core(deadline) == (TICKET, "HD-12", 2, "L2-specialists", at + AFTER, DeadlineState.PENDING, "corr-12")


def test_an_escalation_to_the_top_level_is_the_last() -> None:
    fired = Deadline(TICKET, "HD-12", 2, "L2-specialists", T0, DeadlineState.FIRED)
    deadline = apply(fired, escalated(3, T0 + AFTER), POLICY)
    assert deadline is not None
    assert (deadline.level, deadline.queue, deadline.state) == (3, "L3-engineering", DeadlineState.DONE)


def test_an_escalation_to_the_current_or_a_lower_level_is_ignored() -> None:
    at_2 = pending(level=2, queue="L2-specialists")
    assert apply(at_2, escalated(2, T0 + timedelta(hours=1)), POLICY) is None
    assert apply(at_2, escalated(1, T0 + timedelta(hours=1)), POLICY) is None


def test_an_escalation_of_a_claimed_ticket_records_the_level_but_starts_no_clock() -> None:
    cancelled = Deadline(TICKET, "HD-12", 1, "hardware", T0, DeadlineState.CANCELLED)
    deadline = apply(cancelled, escalated(2, T0), POLICY)
    assert deadline is not None and (deadline.level, deadline.state) == (2, DeadlineState.CANCELLED)


def test_with_a_fixed_target_prioritisation_records_the_priority_but_keeps_the_clock() -> None:
    event = new_envelope(TicketPrioritised, TicketPrioritisedData(number="HD-12", version=2, priority=2, rule="r",
                                                                  reason="x", by="routing"), ticket_id=TICKET)
    deadline = apply(pending(), event, POLICY)
    assert deadline is not None and deadline.priority == 2 and deadline.due_at == pending().due_at


def test_a_deadline_is_not_due_before_its_time() -> None:
    assert escalation_due(pending(), POLICY, T0 + AFTER - timedelta(microseconds=1)) is None


def test_a_passed_deadline_escalates_to_the_next_level() -> None:
    escalation = escalation_due(pending(), POLICY, T0 + AFTER)
    assert escalation is not None
    assert escalation.to_level == LEVELS[1]
    assert escalation.command_id == escalate_command_id(TICKET, 2)
    assert escalation.notification_id == escalation_notification_id(TICKET, 2)
    assert "level 1" in escalation.reason


def test_escalation_ids_name_the_ticket_and_level_so_a_resend_is_the_same_message() -> None:
    first = escalation_due(pending(), POLICY, T0 + AFTER)
    later = escalation_due(pending(), POLICY, T0 + AFTER + timedelta(hours=2))
    assert first is not None and later is not None
    assert (first.command_id, first.notification_id) == (later.command_id, later.notification_id)
    assert escalate_command_id(TICKET, 2) != escalate_command_id(TICKET, 3)
    assert escalate_command_id(TICKET, 2) != escalation_notification_id(TICKET, 2)
    assert escalate_command_id(TICKET, 2) == uuid.uuid5(
        uuid.UUID("5b1f3c2e-8a4d-4f0e-9c6b-2d7e1a9f4b30"), f"escalate:{TICKET}:2"
    )


def test_a_fired_deadline_does_not_escalate_again() -> None:
    fired = Deadline(TICKET, "HD-12", 1, "hardware", T0, DeadlineState.FIRED)
    assert escalation_due(fired, POLICY, T0 + timedelta(days=1)) is None


def test_a_ticket_at_the_top_level_has_nowhere_to_escalate() -> None:
    assert escalation_due(pending(level=3), POLICY, T0 + timedelta(days=1)) is None
