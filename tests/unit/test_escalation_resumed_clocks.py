"""Clocks that resume where they were: a reopened ticket's resolution clock, a warning for a level the levels
file no longer has, and the level a ticket.escalated records as reached."""

from __future__ import annotations

from types import SimpleNamespace

from services.escalation.domain.breaches import on_time
from services.escalation.domain.policy import EscalationPolicy, Target
from tests.unit.test_escalation_targets import (
    LEVELS,
    TICKET,
    UPDATES,
    claimed,
    escalated,
    minutes,
    note,
    policy,
    resolved,
    status,
    ticket,
)

P1 = policy(10, resolution=240)  # a 4 h resolution target, counted 24x7
DAYS = 24 * 60


def reopen(at: float) -> SimpleNamespace:
    return SimpleNamespace(type="ticket.reopened", ticket_id=TICKET, occurred_at=minutes(at), data={})


def test_a_ticket_reopened_days_after_its_resolution_resumes_its_resolution_clock_with_the_time_left() -> None:
    back = ticket(P1, claimed(minutes(2)), resolved(minutes(60)), reopen(2 * DAYS))
    assert back.resolution_due_at == minutes(2 * DAYS + 180)  # 1 h used before the resolution, 3 h left
    assert on_time(back, P1, minutes(2 * DAYS + 1)).escalation is None
    late = on_time(back, P1, minutes(2 * DAYS + 180))
    assert late.escalation is not None and late.escalation.targets == (Target.RESOLUTION,)


def test_a_second_resolution_and_reopening_leave_out_both_resolved_spells() -> None:
    twice = ticket(
        P1, claimed(minutes(2)), resolved(minutes(60)), reopen(DAYS), resolved(minutes(DAYS + 60)), reopen(3 * DAYS)
    )
    assert twice.resolution_due_at == minutes(3 * DAYS + 120)  # 1 h + 1 h used, 2 h left


def test_a_ticket_resolved_while_waiting_on_the_customer_counts_the_wait_once() -> None:
    events = (claimed(minutes(2)), status("waiting_on_customer", minutes(30)), resolved(minutes(60)), reopen(DAYS))
    back = ticket(P1, *events, status("in_progress", minutes(DAYS + 10)))
    assert back.resolution_due_at == minutes(DAYS + 10 + 210)  # 30 min used before the wait, 3.5 h left


def test_a_warning_due_at_a_level_the_levels_file_no_longer_has_is_counted_and_the_ticket_not_picked_up_again() -> None:
    rules = policy(10, update=30, resolution=600)
    at_l3 = ticket(rules, escalated(2, minutes(1)), escalated(3, minutes(2)), claimed(minutes(3)))
    two_levels = EscalationPolicy(LEVELS[:2], sla=rules.sla)  # the file shrank across a restart
    step = on_time(at_l3, two_levels, minutes(20))
    assert step.warnings == () and step.escalation is None
    assert step.after.update_warned == 1 and step.after.next_at is not None and step.after.next_at > minutes(20)
    assert on_time(step.after, two_levels, minutes(20)).after == step.after  # nothing left due: not taken again


def test_ticket_escalated_records_the_level_as_reached_whoever_sent_it() -> None:
    # An unclaimed ticket answered in public, moved to L2 by an escalation this row never recorded as sent
    # (a rebuild from the log, say): its next breach goes one level above L2.
    at_l2 = ticket(UPDATES, note(minutes(4)), escalated(2, minutes(5)))
    assert (at_l2.level, at_l2.escalated_to) == (2, 2)
    assert ticket(UPDATES, note(minutes(4))).escalated_to == 0
