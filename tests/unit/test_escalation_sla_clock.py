"""The first-response clock under SLA policies: priorities, calendars, pauses, assignment and the status adapter."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from contracts.envelope import new_envelope
from contracts.incidents import Channel, CustomerProfile
from contracts.tickets import (
    TicketAssigned,
    TicketAssignedData,
    TicketClaimed,
    TicketClaimedData,
    TicketCustomerReplied,
    TicketCustomerRepliedData,
    TicketEscalated,
    TicketEscalatedData,
    TicketOpened,
    TicketOpenedData,
    TicketPrioritised,
    TicketPrioritisedData,
    TicketResolved,
    TicketResolvedData,
)
from services.escalation.calendar import TWENTY_FOUR_SEVEN, BusinessCalendar
from services.escalation.domain.breaches import escalation_due, warning_due
from services.escalation.domain.deadline import Deadline, DeadlineState
from services.escalation.domain.policy import EscalationPolicy, Level
from services.escalation.domain.ticket_events import (
    Measure,
    apply,
    fold,
    status_changed,
)
from services.escalation.sla import (
    EscalationCriteria,
    PolicyMatch,
    SlaPolicies,
    SlaPolicy,
    SlaTargets,
)
from services.escalation.sla_deadlines import ticket_deadlines
from services.escalation.status import StatusChange, status_change

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = BusinessCalendar("office", BERLIN, {d: ((9 * 60, 17 * 60),) for d in range(5)})
LEVELS = (
    Level(1, "L1", None, "l1@helpdesk.example"),
    Level(2, "L2", "L2-specialists", "l2@helpdesk.example"),
    Level(3, "L3", "L3-engineering", "l3@helpdesk.example"),
)
SLA = SlaPolicies((
    SlaPolicy("vip", PolicyMatch(vip=True), OFFICE, SlaTargets(timedelta(minutes=30))),
    SlaPolicy("p1", PolicyMatch(priorities=frozenset({1})), TWENTY_FOUR_SEVEN, SlaTargets(timedelta(minutes=15))),
    SlaPolicy("rest", PolicyMatch(), OFFICE, SlaTargets(timedelta(hours=4))),
))
POLICY = EscalationPolicy(LEVELS, sla=SLA)
TICKET = uuid.UUID("00000000-0000-4000-8000-000000000042")
FRIDAY_4PM = datetime(2025, 3, 7, 16, 0, tzinfo=BERLIN)


def opened(at: datetime = FRIDAY_4PM, vip: bool = False) -> Any:
    data = TicketOpenedData(
        number="HD-42", version=1, channel=Channel.EMAIL, channel_message_id="m-42", reported_at=at, subject="s",
        description="", customer=CustomerProfile(identified=True, customer_id="C-7", vip=vip),
    )
    return new_envelope(TicketOpened, data, ticket_id=TICKET, occurred_at=at, correlation_id="corr-42")


def prioritised(priority: int, at: datetime = FRIDAY_4PM) -> Any:
    data = TicketPrioritisedData(number="HD-42", version=2, priority=priority, rule="r", reason="x", by="routing")  # type: ignore[arg-type]
    return new_envelope(TicketPrioritised, data, ticket_id=TICKET, occurred_at=at)


def replied(at: datetime) -> Any:
    data = TicketCustomerRepliedData(number="HD-42", version=6, channel=Channel.EMAIL, channel_message_id="m-43",
                                     received_at=at, text="here you go")
    return new_envelope(TicketCustomerReplied, data, ticket_id=TICKET, occurred_at=at)


def status_event(status: str, at: datetime) -> Any:
    """Shaped like the coming ``ticket.status_changed`` (not in the contracts yet)."""
    return SimpleNamespace(type="ticket.status_changed", ticket_id=TICKET, occurred_at=at,
                           data={"number": "HD-42", "version": 5, "status": status})


def open_ticket(*events: Any) -> Deadline:
    deadline = apply(None, opened(), POLICY)
    for event in events:
        deadline = apply(deadline, event, POLICY) or deadline
    assert deadline is not None
    return deadline


def test_an_unprioritised_ticket_is_held_to_the_default_priority_in_business_hours() -> None:
    deadline = open_ticket()
    # Friday 16:00 + 4 business hours: one hour on Friday, three on Monday.
    assert (deadline.policy, deadline.due_at) == ("rest", datetime(2025, 3, 10, 12, 0, tzinfo=BERLIN))


def test_prioritising_to_1_recounts_the_clock_24x7_from_the_opening() -> None:
    deadline = open_ticket(prioritised(1, FRIDAY_4PM + timedelta(seconds=2)))
    assert (deadline.policy, deadline.due_at) == ("p1", FRIDAY_4PM + timedelta(minutes=15))


def test_a_vip_customer_gets_the_vip_target() -> None:
    deadline = apply(None, opened(vip=True), POLICY)
    assert deadline is not None and deadline.policy == "vip" and deadline.customer_id == "C-7"
    assert deadline.due_at == FRIDAY_4PM + timedelta(minutes=30)


def test_waiting_on_the_customer_pauses_the_clock_and_their_reply_resumes_it() -> None:
    paused = apply(open_ticket(), status_event("waiting_on_customer", FRIDAY_4PM + timedelta(minutes=30)), POLICY)
    assert paused is not None and paused.state is DeadlineState.PAUSED and paused.consumed_s == 1800
    assert escalation_due(paused, POLICY, paused.due_at + timedelta(days=30)) is None  # a paused clock never fires
    # The customer answers on Monday at 09:00: 3.5 business hours were left.
    monday = datetime(2025, 3, 10, 9, 0, tzinfo=BERLIN)
    resumed = apply(paused, replied(monday), POLICY)
    assert resumed is not None and resumed.state is DeadlineState.PENDING
    assert resumed.due_at == datetime(2025, 3, 10, 12, 30, tzinfo=BERLIN)


def test_waiting_on_a_third_party_pauses_and_any_other_status_resumes() -> None:
    at = FRIDAY_4PM + timedelta(minutes=10)
    paused = status_changed(open_ticket(), StatusChange("waiting_on_third_party"), at, POLICY)
    assert paused is not None and paused.state is DeadlineState.PAUSED
    back = status_changed(paused, StatusChange("open"), at, POLICY)
    assert back is not None and back.state is DeadlineState.PENDING
    assert back.due_at == open_ticket().due_at  # no time passed while paused
    assert status_changed(back, StatusChange("open"), at, POLICY) is None  # already running


def test_a_pause_spanning_a_weekend_and_a_re_prioritisation_keep_the_used_time() -> None:
    paused = apply(open_ticket(), status_event("waiting_on_customer", FRIDAY_4PM + timedelta(minutes=45)), POLICY)
    re_prioritised = apply(paused, prioritised(2), POLICY)
    assert re_prioritised is not None and re_prioritised.state is DeadlineState.PAUSED
    resumed = apply(re_prioritised, status_event("open", datetime(2025, 3, 10, 16, 0, tzinfo=BERLIN)), POLICY)
    assert resumed is not None
    assert resumed.due_at == datetime(2025, 3, 11, 11, 15, tzinfo=BERLIN)  # 3h15 left: 1h Monday, 2h15 Tuesday


def test_an_assignment_counts_as_a_first_response() -> None:
    data = TicketAssignedData(number="HD-42", version=4, agent_id="agent-7", strategy="round_robin", reason="x")
    event = new_envelope(TicketAssigned, data, ticket_id=TICKET, occurred_at=FRIDAY_4PM)
    assert apply(open_ticket(), event, POLICY).state is DeadlineState.CANCELLED  # type: ignore[union-attr]


def test_the_next_level_gets_the_whole_target_again_on_the_policy_calendar() -> None:
    data = TicketEscalatedData(number="HD-42", version=5, level=2, queue="L2-specialists", reason="late")
    monday_noon = datetime(2025, 3, 10, 12, 0, tzinfo=BERLIN)
    fired = Deadline(**{**open_ticket().__dict__, "state": DeadlineState.FIRED})
    at_2 = apply(fired, new_envelope(TicketEscalated, data, ticket_id=TICKET, occurred_at=monday_noon), POLICY)
    assert at_2 is not None and (at_2.level, at_2.state) == (2, DeadlineState.PENDING)
    assert at_2.due_at == datetime(2025, 3, 10, 16, 0, tzinfo=BERLIN)


def test_the_status_adapter_reads_only_status_changes() -> None:
    assert status_change(status_event("waiting_on_customer", FRIDAY_4PM)) == StatusChange("waiting_on_customer")
    model_like = SimpleNamespace(type="ticket.status_changed", data=SimpleNamespace(status="open"))
    assert status_change(model_like) == StatusChange("open")
    assert status_change(opened()) is None
    assert status_change(SimpleNamespace(type="ticket.status_changed", data={})) is None


def test_a_status_change_for_a_ticket_never_opened_here_holds_nothing() -> None:
    assert apply(None, status_event("waiting_on_customer", FRIDAY_4PM), POLICY) is None


WARNING_SLA = SlaPolicies((
    SlaPolicy("p1", PolicyMatch(), TWENTY_FOUR_SEVEN, SlaTargets(timedelta(minutes=60)), warn_at_percent=(50, 75)),
))
WARNING_POLICY = EscalationPolicy(LEVELS, sla=WARNING_SLA)


def test_warnings_fall_due_at_each_percentage_once_and_never_after_the_breach() -> None:
    deadline = apply(None, opened(), WARNING_POLICY)
    assert deadline is not None and deadline.warn_at == FRIDAY_4PM + timedelta(minutes=30)
    assert deadline.next_at == deadline.warn_at
    assert warning_due(deadline, WARNING_POLICY, FRIDAY_4PM + timedelta(minutes=29)) is None
    first = warning_due(deadline, WARNING_POLICY, FRIDAY_4PM + timedelta(minutes=31))
    assert first is not None and first.percent == 50 and first.level.name == "L1"
    assert first.after.warn_at == FRIDAY_4PM + timedelta(minutes=45)
    second = warning_due(first.after, WARNING_POLICY, FRIDAY_4PM + timedelta(minutes=46))
    assert second is not None and second.percent == 75 and second.after.warn_at is None
    assert second.after.next_at == second.after.due_at
    assert warning_due(second.after, WARNING_POLICY, FRIDAY_4PM + timedelta(minutes=59)) is None
    late = warning_due(deadline, WARNING_POLICY, FRIDAY_4PM + timedelta(minutes=61))
    assert late is None  # past the breach: the escalation goes out instead
    assert first.notification_id != second.notification_id


def test_a_pause_holds_the_warning_and_the_escalation_restarts_them() -> None:
    deadline = apply(None, opened(), WARNING_POLICY)
    paused = apply(deadline, status_event("waiting_on_customer", FRIDAY_4PM + timedelta(minutes=10)), WARNING_POLICY)
    assert paused is not None and paused.warn_at is None
    resumed = apply(paused, replied(FRIDAY_4PM + timedelta(hours=2)), WARNING_POLICY)
    assert resumed is not None and resumed.warn_at == FRIDAY_4PM + timedelta(hours=2, minutes=20)


def test_time_to_first_response_and_resolution_leave_out_the_time_waiting_on_the_customer() -> None:
    measures: list[Measure] = []
    claim = new_envelope(TicketClaimed, TicketClaimedData(number="HD-42", version=7, agent_id="a1"), ticket_id=TICKET,
                         occurred_at=FRIDAY_4PM + timedelta(hours=3))
    resolution = new_envelope(TicketResolved, TicketResolvedData(number="HD-42", version=8, resolution="ok",
                                                                 resolved_by="a1"),
                              ticket_id=TICKET, occurred_at=FRIDAY_4PM + timedelta(hours=5))
    events = [opened(), prioritised(2), status_event("waiting_on_customer", FRIDAY_4PM + timedelta(minutes=30)),
              replied(FRIDAY_4PM + timedelta(hours=2)), claim,
              status_event("waiting_on_third_party", FRIDAY_4PM + timedelta(hours=4)), resolution]
    fold({}, events, POLICY, measures)
    assert [(m.kind, m.seconds, m.priority) for m in measures] == [
        ("first_response", 1.5 * 3600, 2),  # 3 h, less 1.5 h waiting on the customer
        ("resolution", 2.5 * 3600, 2),  # 5 h, less 1.5 h and the last hour waiting on a third party
    ]


CRITERIA_POLICY = EscalationPolicy(LEVELS, sla=SlaPolicies(SLA.policies, criteria=EscalationCriteria(
    customer_replies_unanswered=2, reopened=2)))


def reopening(at: datetime) -> Any:
    """Shaped like the coming ``ticket.reopened`` (not in the contracts yet)."""
    return SimpleNamespace(type="ticket.reopened", ticket_id=TICKET, occurred_at=at, data={"number": "HD-42"})


def test_enough_unanswered_customer_replies_escalate_at_once() -> None:
    deadline = apply(None, opened(), CRITERIA_POLICY)
    one = apply(deadline, replied(FRIDAY_4PM + timedelta(minutes=5)), CRITERIA_POLICY)
    assert one is not None and one.unanswered == 1 and one.due_at == deadline.due_at  # type: ignore[union-attr]
    two = apply(one, replied(FRIDAY_4PM + timedelta(minutes=9)), CRITERIA_POLICY)
    assert two is not None and two.due_at == FRIDAY_4PM + timedelta(minutes=9)
    escalation = escalation_due(two, CRITERIA_POLICY, FRIDAY_4PM + timedelta(minutes=9))
    assert escalation is not None and escalation.reason == "2 customer replies unanswered at level 1"


def test_a_claim_answers_the_replies() -> None:
    deadline = apply(None, opened(), CRITERIA_POLICY)
    one = apply(deadline, replied(FRIDAY_4PM + timedelta(minutes=5)), CRITERIA_POLICY)
    claim = new_envelope(TicketClaimed, TicketClaimedData(number="HD-42", version=7, agent_id="a1"), ticket_id=TICKET,
                         occurred_at=FRIDAY_4PM + timedelta(minutes=6))
    claimed = apply(one, claim, CRITERIA_POLICY)
    assert claimed is not None and claimed.unanswered == 0
    after = apply(claimed, replied(FRIDAY_4PM + timedelta(minutes=7)), CRITERIA_POLICY)
    assert after is not None and after.state is DeadlineState.CANCELLED  # claimed: the agent answers, no escalation


def test_a_ticket_reopened_often_enough_escalates_at_once_even_when_claimed() -> None:
    resolution = new_envelope(TicketResolved, TicketResolvedData(number="HD-42", version=8, resolution="ok",
                                                                 resolved_by="a1"), ticket_id=TICKET)
    resolved = apply(apply(None, opened(), CRITERIA_POLICY), resolution, CRITERIA_POLICY)
    once = apply(resolved, reopening(FRIDAY_4PM + timedelta(hours=1)), CRITERIA_POLICY)
    assert once is not None and (once.reopened, once.state) == (1, DeadlineState.CANCELLED)
    twice = apply(once, reopening(FRIDAY_4PM + timedelta(hours=2)), CRITERIA_POLICY)
    assert twice is not None and twice.state is DeadlineState.PENDING
    escalation = escalation_due(twice, CRITERIA_POLICY, FRIDAY_4PM + timedelta(hours=2))
    assert escalation is not None and escalation.reason.startswith("reopened 2 times")


RESOLVING = EscalationPolicy(LEVELS, sla=SlaPolicies((
    SlaPolicy("office", PolicyMatch(), OFFICE, SlaTargets(timedelta(hours=4), resolution=timedelta(hours=8))),
)))


def kinds(deadline: Deadline, now: datetime) -> dict[str, Any]:
    return {d.kind: d for d in ticket_deadlines(deadline, RESOLVING, now)}


def test_every_deadline_is_listed_and_the_resolution_leaves_out_the_waiting() -> None:
    deadline = apply(None, opened(), RESOLVING)
    assert deadline is not None
    listed = kinds(deadline, FRIDAY_4PM)
    assert set(listed) == {"first_response", "escalation", "resolution"}
    # 8 business hours from Friday 16:00: 1 h on Friday, 7 h on Monday.
    assert listed["resolution"].due_at == datetime(2025, 3, 10, 16, 0, tzinfo=BERLIN)
    waiting = apply(deadline, status_event("waiting_on_customer", datetime(2025, 3, 10, 10, 0, tzinfo=BERLIN)),
                    RESOLVING)
    assert waiting is not None
    paused = kinds(waiting, datetime(2025, 3, 10, 12, 0, tzinfo=BERLIN))["resolution"]
    assert (paused.state, paused.due_at, paused.remaining_s) == ("paused", None, 6 * 3600)  # 2 h used
    back = apply(waiting, replied(datetime(2025, 3, 10, 14, 0, tzinfo=BERLIN)), RESOLVING)
    assert back is not None
    resolution = kinds(back, datetime(2025, 3, 10, 14, 0, tzinfo=BERLIN))["resolution"]
    # 6 h left from Monday 14:00: 3 h on Monday, 3 h on Tuesday.
    assert (resolution.state, resolution.due_at) == ("running", datetime(2025, 3, 11, 12, 0, tzinfo=BERLIN))


def test_a_resolution_after_its_due_time_shows_as_breached() -> None:
    deadline = apply(None, opened(), RESOLVING)
    late = new_envelope(TicketResolved, TicketResolvedData(number="HD-42", version=8, resolution="ok",
                                                           resolved_by="a1"),
                        ticket_id=TICKET, occurred_at=datetime(2025, 3, 12, 9, 0, tzinfo=BERLIN))
    resolved = apply(deadline, late, RESOLVING)
    assert resolved is not None
    shown = kinds(resolved, datetime(2025, 3, 12, 9, 0, tzinfo=BERLIN))["resolution"]
    assert shown.state == "breached" and shown.breached_at == shown.due_at
