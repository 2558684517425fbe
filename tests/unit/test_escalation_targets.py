"""The three SLA targets: a public reply is a first response, the next-update clock, the resolution clock, and
how their breaches escalate one level each, never the same level twice."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from contracts.envelope import new_envelope
from contracts.incidents import Channel, CustomerProfile
from contracts.tickets import (
    TicketClaimed,
    TicketClaimedData,
    TicketEscalated,
    TicketEscalatedData,
    TicketNoteAdded,
    TicketNoteAddedData,
    TicketOpened,
    TicketOpenedData,
    TicketResolved,
    TicketResolvedData,
)
from services.escalation.calendar import TWENTY_FOUR_SEVEN
from services.escalation.domain.breaches import on_time
from services.escalation.domain.deadline import Deadline, DeadlineState
from services.escalation.domain.message_ids import escalate_command_id
from services.escalation.domain.policy import EscalationPolicy, Level, Target
from services.escalation.domain.ticket_events import (
    Measure,
    apply,
    fold,
    moves_deadlines,
)
from services.escalation.sla import PolicyMatch, SlaPolicies, SlaPolicy, SlaTargets
from services.escalation.sla_deadlines import ticket_deadlines

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
TICKET = uuid.UUID("00000000-0000-4000-8000-000000000042")
LEVELS = (
    Level(1, "L1", None, "l1@helpdesk.example"),
    Level(2, "L2", "L2-specialists", "l2@helpdesk.example"),
    Level(3, "L3", "L3-engineering", "l3@helpdesk.example"),
)


def policy(first: int, *, update: int | None = None, resolution: int | None = None) -> EscalationPolicy:
    """Targets in minutes, counted 24x7, with a warning at half of each."""
    targets = SlaTargets(
        timedelta(minutes=first),
        timedelta(minutes=update) if update else None,
        timedelta(minutes=resolution) if resolution else None,
    )
    sla = SlaPolicies((SlaPolicy("all", PolicyMatch(), TWENTY_FOUR_SEVEN, targets, (50,)),))
    return EscalationPolicy(LEVELS, sla=sla)


UPDATES = policy(10, update=30)
RESOLUTION = policy(10, resolution=120)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def opened() -> Any:
    data = TicketOpenedData(
        number="HD-42", version=1, channel=Channel.EMAIL, channel_message_id="m-42", reported_at=T0, subject="s",
        description="", customer=CustomerProfile(identified=True, customer_id="C-7"),
    )
    return new_envelope(TicketOpened, data, ticket_id=TICKET, occurred_at=T0)


def note(at: datetime, visibility: str = "public") -> Any:
    data = TicketNoteAddedData(number="HD-42", version=3, text="on it", visibility=visibility, author="a1")  # type: ignore[arg-type]
    return new_envelope(TicketNoteAdded, data, ticket_id=TICKET, occurred_at=at)


def claimed(at: datetime) -> Any:
    return new_envelope(TicketClaimed, TicketClaimedData(number="HD-42", version=2, agent_id="a1"),
                        ticket_id=TICKET, occurred_at=at)


def resolved(at: datetime) -> Any:
    data = TicketResolvedData(number="HD-42", version=9, resolution="fixed", resolved_by="a1")
    return new_envelope(TicketResolved, data, ticket_id=TICKET, occurred_at=at)


def escalated(level: int, at: datetime) -> Any:
    data = TicketEscalatedData(number="HD-42", version=4, level=level, queue=LEVELS[level - 1].queue or "", reason="r")
    return new_envelope(TicketEscalated, data, ticket_id=TICKET, occurred_at=at)


def status(value: str, at: datetime) -> Any:
    return SimpleNamespace(type="ticket.status_changed", ticket_id=TICKET, occurred_at=at,
                           data={"number": "HD-42", "version": 5, "status": value})


def ticket(rules: EscalationPolicy, *events: Any) -> Deadline:
    deadline = apply(None, opened(), rules)
    assert deadline is not None
    for event in events:
        deadline = apply(deadline, event, rules) or deadline
    return deadline


# --- first response ------------------------------------------------------------------------------------------


def test_a_public_reply_by_an_agent_is_the_first_response() -> None:
    measures: list[Measure] = []
    [answered] = fold({}, [opened(), note(minutes(4))], UPDATES, measures).values()
    assert answered.state is DeadlineState.CANCELLED and answered.responded_at == minutes(4)
    assert [(m.kind, m.seconds) for m in measures] == [("first_response", 240.0)]
    assert on_time(answered, UPDATES, minutes(11)).escalation is None  # the first-response target no longer counts


def test_an_internal_note_is_no_response_and_costs_the_consumer_nothing() -> None:
    internal = note(minutes(4), "internal")
    assert not moves_deadlines(internal)
    assert apply(ticket(UPDATES), internal, UPDATES) is None
    assert on_time(ticket(UPDATES, internal), UPDATES, minutes(10)).escalation is not None


# --- next update ---------------------------------------------------------------------------------------------


def test_the_next_update_is_owed_from_the_first_response_and_every_public_reply_starts_it_again() -> None:
    assert ticket(UPDATES).update_due_at is None  # nothing owed before the first response
    claim = ticket(UPDATES, claimed(minutes(2)))
    assert claim.update_due_at == minutes(32) and claim.update_warn_at == minutes(17)
    updated = ticket(UPDATES, claimed(minutes(2)), note(minutes(20)))
    assert updated.update_due_at == minutes(50) and updated.update_run == claim.update_run + 1
    internal = ticket(UPDATES, claimed(minutes(2)), note(minutes(20), "internal"))
    assert internal.update_due_at == minutes(32)


def test_waiting_on_the_customer_stops_the_next_update_clock_and_their_answer_resumes_it() -> None:
    waiting = ticket(UPDATES, claimed(minutes(0)), status("waiting_on_customer", minutes(10)))
    assert waiting.update_due_at is None and waiting.update_used_s == 600
    assert on_time(waiting, UPDATES, minutes(500)).escalation is None
    [view] = [d for d in ticket_deadlines(waiting, UPDATES, minutes(60)) if d.kind == "next_update"]
    assert (view.state, view.remaining_s) == ("paused", 1200)
    back = apply(waiting, status("in_progress", minutes(100)), UPDATES)
    assert back is not None and back.update_due_at == minutes(120)  # 20 minutes were left


def test_a_missed_next_update_warns_then_escalates_one_level_once() -> None:
    claim = ticket(UPDATES, claimed(minutes(2)))
    warned = on_time(claim, UPDATES, minutes(17))
    assert [(w.target, w.percent) for w in warned.warnings] == [(Target.NEXT_UPDATE, 50)]
    assert warned.escalation is None and warned.after.update_warn_at is None
    breach = on_time(warned.after, UPDATES, minutes(32))
    assert breach.escalation is not None and breach.escalation.to_level.number == 2
    assert breach.escalation.targets == (Target.NEXT_UPDATE,) and "next-update" in breach.escalation.reason
    assert breach.escalation.due_at == minutes(32)
    assert breach.after.update_breached and breach.after.escalated_to == 2 and breach.after.next_at is None
    assert on_time(breach.after, UPDATES, minutes(90)).escalation is None


def test_a_public_update_after_a_breach_starts_a_fresh_clock_that_can_escalate_again() -> None:
    breach = on_time(ticket(UPDATES, claimed(minutes(2))), UPDATES, minutes(32))
    later = apply(breach.after, note(minutes(40)), UPDATES)
    assert later is not None and not later.update_breached and later.update_due_at == minutes(70)
    again = on_time(later, UPDATES, minutes(70)).escalation
    assert again is not None and again.to_level.number == 3  # one level above the last one


def test_resolving_stops_the_next_update_clock_and_reopening_starts_it_afresh() -> None:
    done = ticket(UPDATES, claimed(minutes(2)), resolved(minutes(10)))
    assert done.update_due_at is None and done.next_at is None
    back = apply(done, SimpleNamespace(type="ticket.reopened", ticket_id=TICKET, occurred_at=minutes(60)), UPDATES)
    assert back is not None and back.update_due_at == minutes(90)


# --- resolution ----------------------------------------------------------------------------------------------


def test_a_missed_resolution_escalates_a_claimed_ticket_one_level_above_where_it_is() -> None:
    # Unclaimed past its first response: to L2, and the ticket service moves it there; then claimed at L2.
    first = on_time(ticket(RESOLUTION), RESOLUTION, minutes(10))
    assert first.escalation is not None and first.escalation.to_level.number == 2
    at_l2 = ticket(RESOLUTION, escalated(2, minutes(10)), claimed(minutes(15)))
    at_l2 = replace(at_l2, escalated_to=first.after.escalated_to)
    assert at_l2.resolution_due_at == minutes(120) and at_l2.resolution_warn_at == minutes(60)
    assert [w.target for w in on_time(at_l2, RESOLUTION, minutes(61)).warnings] == [Target.RESOLUTION]
    breach = on_time(at_l2, RESOLUTION, minutes(120))
    assert breach.escalation is not None and breach.escalation.to_level.number == 3
    assert breach.escalation.targets == (Target.RESOLUTION,) and "resolution" in breach.escalation.reason
    assert breach.escalation.command_id == escalate_command_id(TICKET, 3)
    assert breach.after.resolution_breached and breach.after.state is DeadlineState.CANCELLED


def test_first_response_and_resolution_breached_together_make_one_step_with_both_reasons() -> None:
    rules = policy(10, resolution=10)
    step = on_time(ticket(rules), rules, minutes(30))
    assert step.escalation is not None and step.escalation.to_level.number == 2
    assert step.escalation.targets == (Target.FIRST_RESPONSE, Target.RESOLUTION)
    assert "first-response" in step.escalation.reason and "resolution" in step.escalation.reason
    assert step.after.state is DeadlineState.FIRED and step.after.resolution_breached


def test_a_second_breach_before_the_ticket_moved_goes_one_level_further_not_to_the_same_level() -> None:
    rules = policy(10, resolution=20)
    fired = on_time(ticket(rules), rules, minutes(10)).after  # to L2; ticket.escalated not seen yet
    assert fired.state is DeadlineState.FIRED and fired.escalated_to == 2
    step = on_time(fired, rules, minutes(20))
    assert step.escalation is not None and step.escalation.to_level.number == 3


def test_a_breach_at_the_top_level_is_recorded_and_sends_nothing() -> None:
    top = replace(ticket(UPDATES, claimed(minutes(2))), escalated_to=3)
    step = on_time(top, UPDATES, minutes(40))
    assert step.escalation is None and step.breached == (Target.NEXT_UPDATE,)
    assert step.after.update_breached and step.after.next_at is None


def test_the_deadlines_published_list_the_next_update_and_the_resolution() -> None:
    rules = policy(10, update=30, resolution=120)
    listed = ticket_deadlines(ticket(rules, claimed(minutes(2))), rules, minutes(5))
    kinds = {d.kind: d for d in listed}
    assert kinds["next_update"].due_at == minutes(32) and kinds["next_update"].state == "running"
    assert kinds["resolution"].due_at == minutes(120) and kinds["first_response"].state == "met"


def test_a_warning_the_policies_file_no_longer_has_is_dropped_instead_of_picked_up_forever() -> None:
    warned_twice = policy(10, update=30)
    stale = replace(ticket(warned_twice), warn_at=minutes(1), warned=1)  # the file used to warn at 10% and 50%
    step = on_time(stale, warned_twice, minutes(6))
    assert step.warnings == () and step.escalation is None
    assert step.after.warn_at is None and step.after.next_at == minutes(10)
