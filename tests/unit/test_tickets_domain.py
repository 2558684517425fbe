"""The ticket's rules, on the aggregate alone (no storage, no Kafka)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.incidents import Channel, CustomerProfile, IncidentIdentifiedData
from contracts.tickets import (
    TicketClaimedData,
    TicketEscalatedData,
    TicketPrioritisedData,
    TicketResolvedData,
    TicketRoutedData,
)
from services.tickets.domain import (
    Actor,
    Status,
    Ticket,
    TicketRuleViolation,
    open_ticket,
)

TICKET_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def incident(**changes: object) -> IncidentIdentifiedData:
    fields: dict[str, object] = {
        "channel": Channel.EMAIL,
        "channel_message_id": "msg-1",
        "received_at": datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
        "subject": "Printer on fire",
        "description": "Third floor printer is smoking",
        "components": ["printer-3f"],
        "impact": "high",
        "customer": CustomerProfile(identified=True, identified_by="email", customer_id="c-7", name="Ada"),
    }
    fields.update(changes)
    return IncidentIdentifiedData(**fields)  # type: ignore[arg-type]


def new_ticket() -> Ticket:
    return Ticket.from_events(TICKET_ID, [open_ticket("HD-1", incident())])


def routed(ticket: Ticket, priority: int = 2, queue: str = "service-desk") -> Ticket:
    return ticket.applied(ticket.route(**route_args(priority, queue)))


def route_args(priority: int = 2, queue: str = "service-desk") -> dict[str, object]:
    return {
        "priority": priority,
        "priority_rule": "vip",
        "priority_reason": "VIP customer",
        "queue": queue,
        "queue_rule": "printers",
        "queue_reason": "component printer-3f",
    }


def rule_of(excinfo: pytest.ExceptionInfo[TicketRuleViolation]) -> str:
    return excinfo.value.rule


# --- opening and folding --------------------------------------------------------


def test_an_opened_ticket_holds_the_incident_and_waits_unrouted_at_level_one() -> None:
    ticket = new_ticket()
    assert ticket.number == "HD-1"
    assert ticket.version == 1
    assert ticket.status is Status.OPEN
    assert ticket.subject == "Printer on fire"
    assert ticket.components == ("printer-3f",)
    assert ticket.customer.customer_id == "c-7"
    assert ticket.reported_at == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert (ticket.priority, ticket.queue, ticket.level, ticket.assignee) == (None, None, 1, None)


def test_a_stream_must_start_with_the_opening() -> None:
    with pytest.raises(ValueError, match="must start with ticket.opened"):
        Ticket.from_events(TICKET_ID, [TicketClaimedData(number="HD-1", version=1, agent_id="alice")])


def test_an_event_out_of_version_order_is_refused() -> None:
    with pytest.raises(ValueError, match="does not follow"):
        new_ticket().apply(TicketClaimedData(number="HD-1", version=3, agent_id="alice"))


def test_folding_a_whole_stream_gives_the_state_its_events_describe() -> None:
    ticket = Ticket.from_events(
        TICKET_ID,
        [
            open_ticket("HD-1", incident()),
            TicketPrioritisedData(number="HD-1", version=2, priority=1, rule="r", reason="x", by="routing"),
            TicketRoutedData(number="HD-1", version=3, queue="l1", rule="r", reason="x"),
            TicketEscalatedData(number="HD-1", version=4, level=2, queue="l2", reason="late"),
            TicketClaimedData(number="HD-1", version=5, agent_id="bob"),
            TicketResolvedData(number="HD-1", version=6, resolution="Replaced fuser", resolved_by="bob"),
        ],
    )
    assert (ticket.version, ticket.priority, ticket.queue, ticket.level) == (6, 1, "l2", 2)
    assert (ticket.status, ticket.assignee, ticket.resolved_by) == (Status.RESOLVED, "bob", "bob")
    assert ticket.resolution == "Replaced fuser"


# --- routing -------------------------------------------------------------------


def test_routing_an_unrouted_ticket_records_its_priority_then_its_queue() -> None:
    events = new_ticket().route(**route_args(2, "service-desk"))
    assert [type(e) for e in events] == [TicketPrioritisedData, TicketRoutedData]
    prioritised, routed_to = events
    assert isinstance(prioritised, TicketPrioritisedData) and isinstance(routed_to, TicketRoutedData)
    assert (prioritised.version, prioritised.priority, prioritised.rule, prioritised.by) == (2, 2, "vip", "routing")
    assert (routed_to.version, routed_to.queue, routed_to.reason) == (3, "service-desk", "component printer-3f")


def test_a_later_route_records_only_what_changed() -> None:
    ticket = routed(new_ticket(), priority=2, queue="service-desk")
    only_queue = ticket.route(**route_args(2, "network"))
    assert [type(e) for e in only_queue] == [TicketRoutedData]
    assert only_queue[0].version == 4
    only_priority = ticket.route(**route_args(1, "service-desk"))
    assert [type(e) for e in only_priority] == [TicketPrioritisedData]


def test_the_same_route_again_records_nothing() -> None:
    ticket = routed(new_ticket())
    assert ticket.route(**route_args()) == []


def test_a_priority_outside_one_to_five_is_a_rule_violation() -> None:
    with pytest.raises(TicketRuleViolation) as excinfo:
        new_ticket().route(**route_args(priority=6))
    assert rule_of(excinfo) == "priority_out_of_range"


def test_routing_a_resolved_ticket_records_nothing() -> None:
    ticket = new_ticket()
    ticket = ticket.applied(ticket.claim("alice"))
    ticket = ticket.applied(ticket.resolve("alice", "done"))
    assert ticket.route(**route_args()) == []


# --- claiming ------------------------------------------------------------------


def test_claiming_an_open_ticket_makes_the_agent_its_owner_and_puts_it_in_progress() -> None:
    ticket = routed(new_ticket())
    events = ticket.claim("alice")
    assert events == [TicketClaimedData(number="HD-1", version=4, agent_id="alice")]
    claimed = ticket.applied(events)
    assert (claimed.status, claimed.assignee) == (Status.IN_PROGRESS, "alice")


def test_claiming_a_ticket_one_already_owns_records_nothing() -> None:
    ticket = new_ticket()
    ticket = ticket.applied(ticket.claim("alice"))
    assert ticket.claim("alice") == []


def test_claiming_someone_elses_ticket_is_a_rule_violation() -> None:
    ticket = new_ticket()
    ticket = ticket.applied(ticket.claim("alice"))
    with pytest.raises(TicketRuleViolation) as excinfo:
        ticket.claim("bob")
    assert rule_of(excinfo) == "claimed_by_another_agent"
    assert "alice" in excinfo.value.message


def test_a_resolved_ticket_cannot_be_claimed_even_by_its_owner() -> None:
    ticket = new_ticket()
    ticket = ticket.applied(ticket.claim("alice"))
    ticket = ticket.applied(ticket.resolve("alice", "done"))
    for agent in ("alice", "bob"):
        with pytest.raises(TicketRuleViolation) as excinfo:
            ticket.claim(agent)
        assert rule_of(excinfo) == "ticket_resolved"


def test_a_blank_agent_id_cannot_claim() -> None:
    with pytest.raises(TicketRuleViolation) as excinfo:
        new_ticket().claim("  ")
    assert rule_of(excinfo) == "agent_required"


# --- resolving -----------------------------------------------------------------


def test_the_owner_resolves_with_a_resolution() -> None:
    ticket = new_ticket()
    ticket = ticket.applied(ticket.claim("alice"))
    events = ticket.resolve("alice", "Replaced the fuser")
    assert events == [
        TicketResolvedData(number="HD-1", version=3, resolution="Replaced the fuser", resolved_by="alice")
    ]
    assert ticket.applied(events).status is Status.RESOLVED


@pytest.mark.parametrize("owner", [None, "bob"])
def test_only_the_owner_can_resolve(owner: str | None) -> None:
    ticket = new_ticket()
    if owner:
        ticket = ticket.applied(ticket.claim(owner))
    with pytest.raises(TicketRuleViolation) as excinfo:
        ticket.resolve("alice", "done")
    assert rule_of(excinfo) == "only_owner_can_resolve"


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_a_blank_resolution_is_a_rule_violation_naming_the_rule(text: str) -> None:
    ticket = new_ticket()
    ticket = ticket.applied(ticket.claim("alice"))
    with pytest.raises(TicketRuleViolation) as excinfo:
        ticket.resolve("alice", text)
    assert rule_of(excinfo) == "resolution_required"
    assert "resolution_required" in str(excinfo.value)


def test_resolving_again_with_the_same_resolution_records_nothing_but_a_different_one_is_refused() -> None:
    ticket = new_ticket()
    ticket = ticket.applied(ticket.claim("alice"))
    ticket = ticket.applied(ticket.resolve("alice", "done"))
    assert ticket.resolve("alice", "done") == []
    with pytest.raises(TicketRuleViolation) as excinfo:
        ticket.resolve("alice", "something else")
    assert rule_of(excinfo) == "ticket_resolved"


# --- escalating ----------------------------------------------------------------


def test_escalating_an_unclaimed_ticket_moves_it_up_a_level_into_that_levels_queue() -> None:
    ticket = routed(new_ticket())
    events = ticket.escalate(level=2, queue="second-line", reason="no response within 15 minutes")
    assert events == [
        TicketEscalatedData(
            number="HD-1", version=4, level=2, queue="second-line", reason="no response within 15 minutes"
        )
    ]
    escalated = ticket.applied(events)
    assert (escalated.level, escalated.queue, escalated.status, escalated.assignee) == (
        2,
        "second-line",
        Status.OPEN,
        None,
    )


@pytest.mark.parametrize("level", [1, 2])
def test_escalation_must_raise_the_level(level: int) -> None:
    ticket = new_ticket()
    ticket = ticket.applied(ticket.escalate(level=2, queue="second-line", reason="late"))
    with pytest.raises(TicketRuleViolation) as excinfo:
        ticket.escalate(level=level, queue="second-line", reason="late again")
    assert rule_of(excinfo) == "escalation_must_raise_level"


def test_escalating_a_claimed_ticket_records_nothing() -> None:
    ticket = new_ticket()
    ticket = ticket.applied(ticket.claim("alice"))
    assert ticket.escalate(level=2, queue="second-line", reason="late") == []


def test_a_late_resolution_escalates_an_owned_ticket_which_stays_with_its_owner() -> None:
    ticket = routed(new_ticket())
    ticket = ticket.applied(ticket.claim("alice"))
    events = ticket.escalate(level=2, queue="second-line", reason="resolution overdue", owned_too=True)
    escalated = ticket.applied(events)
    assert [type(e) for e in events] == [TicketEscalatedData]
    assert (escalated.level, escalated.queue, escalated.status, escalated.assignee) == (
        2,
        "second-line",
        Status.IN_PROGRESS,
        "alice",
    )


def test_no_breach_escalates_a_resolved_or_merged_ticket() -> None:
    ticket = new_ticket()
    ticket = ticket.applied(ticket.claim("alice"))
    ticket = ticket.applied(ticket.resolve("alice", "done"))
    assert ticket.escalate(level=2, queue="second-line", reason="late", owned_too=True) == []


def test_escalation_racing_a_resolution_records_nothing_rather_than_failing() -> None:
    ticket = new_ticket()
    ticket = ticket.applied(ticket.claim("alice"))
    ticket = ticket.applied(ticket.resolve("alice", "done"))
    assert ticket.escalate(level=2, queue="second-line", reason="late") == []


def test_commands_never_change_the_ticket_they_are_asked_of() -> None:
    ticket = routed(new_ticket())
    ticket.claim("alice")
    ticket.escalate(level=3, queue="third-line", reason="late")
    assert (ticket.version, ticket.assignee, ticket.level) == (3, None, 1)


# --- assignment, flags and replies ---------------------------------------------


def test_an_assigned_ticket_is_in_progress_with_the_agent_as_assignee() -> None:
    ticket = routed(new_ticket())
    assigned = ticket.applied(ticket.assign("agent-7", strategy="round_robin", reason="next in rota"))
    assert (assigned.status, assigned.assignee) == (Status.IN_PROGRESS, "agent-7")


def test_assigning_a_ticket_to_its_assignee_again_changes_nothing() -> None:
    ticket = routed(new_ticket())
    assigned = ticket.applied(ticket.assign("agent-7", strategy="direct", reason="asked for"))
    assert assigned.assign("agent-7", strategy="direct", reason="asked for") == []


def test_a_resolved_ticket_cannot_be_assigned() -> None:
    ticket = routed(new_ticket())
    ticket = ticket.applied(ticket.claim("agent-1"))
    ticket = ticket.applied(ticket.resolve("agent-1", "restarted"))
    with pytest.raises(TicketRuleViolation) as excinfo:
        ticket.assign("agent-7", strategy="direct", reason="asked for")
    assert rule_of(excinfo) == "ticket_resolved"


def test_routing_does_not_take_a_ticket_from_the_agent_who_owns_it() -> None:
    ticket = routed(new_ticket())
    ticket = ticket.applied(ticket.claim("agent-1"))
    with pytest.raises(TicketRuleViolation) as excinfo:
        ticket.assign("agent-7", strategy="least_loaded", reason="least busy")
    assert rule_of(excinfo) == "claimed_by_another_agent"


def test_a_ticket_keeps_the_set_of_its_flags() -> None:
    ticket = new_ticket()
    events = ticket.flag("sla_warning", reason="80% of the deadline used", raised_by="escalation")
    ticket = ticket.applied(events)
    ticket = ticket.applied(ticket.flag("vip", reason="board member", raised_by="routing"))
    assert ticket.flags == {"sla_warning", "vip"}
    assert ticket.flag("vip", reason="again", raised_by="routing") == []


def test_flags_raised_in_one_run_of_events_all_stay() -> None:
    ticket = new_ticket()
    first = ticket.flag("a", reason="r", raised_by="x")
    second = ticket.applied(first).flag("b", reason="r", raised_by="x")
    assert Ticket.from_events(TICKET_ID, [open_ticket("HD-1", incident()), *first, *second]).flags == {"a", "b"}


def test_a_reply_is_recorded_once_per_channel_message() -> None:
    ticket = new_ticket()
    reply = {
        "channel": Channel.EMAIL,
        "channel_message_id": "reply-1",
        "received_at": datetime(2025, 3, 1, 10, tzinfo=UTC),
        "text": "Still smoking",
    }
    ticket = ticket.applied(ticket.record_reply(**reply))  # type: ignore[arg-type]
    assert ticket.record_reply(**reply) == []  # type: ignore[arg-type]
    assert ticket.version == 2


def test_a_ticket_belongs_to_the_customer_with_its_directory_id() -> None:
    ticket = new_ticket()
    assert ticket.belongs_to(CustomerProfile(identified=True, identified_by="phone", customer_id="c-7"))
    assert not ticket.belongs_to(CustomerProfile(identified=True, identified_by="email", customer_id="c-8"))
    assert not ticket.belongs_to(CustomerProfile(identified=False, email="ada@example.com"))


def test_an_unidentified_customers_ticket_belongs_to_the_same_email_or_phone() -> None:
    anonymous = incident(customer=CustomerProfile(identified=False, email="Bob@Example.com", phone="+441234"))
    ticket = Ticket.from_events(TICKET_ID, [open_ticket("HD-1", anonymous)])
    assert ticket.belongs_to(CustomerProfile(identified=False, email="bob@example.com"))
    assert ticket.belongs_to(CustomerProfile(identified=False, phone="+441234"))
    assert not ticket.belongs_to(CustomerProfile(identified=False, email="eve@example.com"))
    assert not ticket.belongs_to(CustomerProfile(identified=False))


def opened_ticket_for(customer: CustomerProfile) -> Ticket:
    return Ticket.from_events(TICKET_ID, [open_ticket("HD-1", incident(customer=customer))])


def test_an_unidentified_social_customers_ticket_belongs_to_the_same_sender_id() -> None:
    ticket = opened_ticket_for(CustomerProfile(identified=False, social_handle="facebook:7001"))
    assert ticket.belongs_to(CustomerProfile(identified=False, social_handle="Facebook:7001"))
    assert ticket.belongs_to(CustomerProfile(identified=False, social_handle="@facebook:7001"))
    assert not ticket.belongs_to(CustomerProfile(identified=False, social_handle="facebook:7002"))
    assert not ticket.belongs_to(CustomerProfile(identified=False))


def test_an_unverified_contact_is_never_the_customer_of_a_verified_ones_ticket() -> None:
    ticket = opened_ticket_for(CustomerProfile(identified=False, email="bob@example.com"))
    assert not ticket.belongs_to(CustomerProfile(identified=False, verified=False, email="bob@example.com"))
    chat = opened_ticket_for(CustomerProfile(identified=False, verified=False, claimed_user_id="c-42"))
    assert chat.belongs_to(CustomerProfile(identified=False, verified=False, claimed_user_id="c-42"))
    assert not chat.belongs_to(CustomerProfile(identified=False, verified=False, claimed_user_id="c-43"))
    assert not chat.belongs_to(CustomerProfile(identified=True, customer_id="c-42"))


# --- the agent's workflow: release, notes, status, priority, queue, close, reopen ---------

ALICE, BOB, LENA = Actor("alice"), Actor("bob"), Actor("lena", lead=True)
AT = datetime(2025, 3, 2, 12, tzinfo=UTC)
WINDOW = timedelta(days=7)


def claimed(by: str = "alice") -> Ticket:
    ticket = routed(new_ticket())
    return ticket.applied(ticket.claim(by))


def resolved(by: str = "alice") -> Ticket:
    ticket = claimed(by)
    return ticket.applied(ticket.resolve(by, "replaced the toner"))


def violation(call: object) -> str:
    with pytest.raises(TicketRuleViolation) as excinfo:
        call()  # type: ignore[operator]
    return rule_of(excinfo)


def test_the_owner_or_a_lead_releases_a_ticket_back_to_its_queue() -> None:
    for actor in (ALICE, LENA):
        ticket = claimed()
        released = ticket.applied(ticket.release(actor))
        assert (released.status, released.assignee, released.queue) == (Status.OPEN, None, "service-desk")


def test_another_agent_cannot_release_someone_elses_ticket() -> None:
    assert violation(lambda: claimed().release(BOB)) == "only_owner_or_lead"


def test_an_unclaimed_or_resolved_ticket_cannot_be_released() -> None:
    assert violation(lambda: routed(new_ticket()).release(LENA)) == "ticket_not_claimed"
    assert violation(lambda: resolved().release(ALICE)) == "ticket_resolved"


def test_any_agent_adds_internal_or_public_notes_with_text() -> None:
    (note,) = claimed().add_note("bob", "Checked the fuser", "internal")
    assert (note.author, note.visibility, note.text) == ("bob", "internal", "Checked the fuser")
    assert violation(lambda: claimed().add_note("bob", "  ", "public")) == "note_text_required"
    assert violation(lambda: claimed().add_note("bob", "hi", "secret")) == "visibility_unknown"


def test_the_owner_sets_a_waiting_status_and_the_same_status_again_changes_nothing() -> None:
    ticket = claimed()
    waiting = ticket.applied(ticket.change_status(ALICE, Status.WAITING_ON_CUSTOMER))
    assert waiting.status is Status.WAITING_ON_CUSTOMER
    assert waiting.change_status(ALICE, Status.WAITING_ON_CUSTOMER) == []
    back = waiting.applied(waiting.change_status(LENA, Status.IN_PROGRESS))
    assert back.status is Status.IN_PROGRESS


def test_status_rules_name_what_forbids_the_change() -> None:
    assert violation(lambda: claimed().change_status(BOB, Status.WAITING_ON_THIRD_PARTY)) == "only_owner_or_lead"
    assert violation(lambda: claimed().change_status(ALICE, Status.RESOLVED)) == "status_not_settable"
    assert violation(lambda: routed(new_ticket()).change_status(LENA, Status.IN_PROGRESS)) == "ticket_not_claimed"
    assert violation(lambda: resolved().change_status(ALICE, Status.IN_PROGRESS)) == "ticket_resolved"


def test_a_manual_priority_records_the_agent_the_rule_manual_and_the_reason() -> None:
    (event,) = claimed().change_priority(BOB, 1, "whole floor is down")
    assert isinstance(event, TicketPrioritisedData)
    assert (event.priority, event.rule, event.by, event.reason) == (1, "manual", "bob", "whole floor is down")
    assert violation(lambda: claimed().change_priority(BOB, 1, " ")) == "reason_required"
    assert violation(lambda: claimed().change_priority(BOB, 9, "x")) == "priority_out_of_range"
    assert claimed().change_priority(BOB, 2, "same as routing said") == []


def test_a_manual_queue_move_is_routed_with_the_rule_manual() -> None:
    (event,) = claimed().move_to_queue(BOB, "printers", "hardware fault")
    assert isinstance(event, TicketRoutedData)
    assert (event.queue, event.rule) == ("printers", "manual")
    assert "bob" in event.reason and "hardware fault" in event.reason


def test_only_a_resolved_ticket_closes_and_only_by_its_owner_or_a_lead() -> None:
    assert violation(lambda: claimed().close(ALICE)) == "only_resolved_can_close"
    assert violation(lambda: resolved().close(BOB)) == "only_owner_or_lead"
    closed = resolved().applied(resolved().close(LENA))
    assert closed.status is Status.CLOSED
    assert closed.close(ALICE) == []
    assert not closed.accepts_reply()
    assert violation(lambda: closed.claim("bob")) == "ticket_closed"
    assert violation(lambda: closed.resolve("alice", "again")) == "ticket_closed"


def test_a_ticket_reopens_within_the_window_back_to_its_owner() -> None:
    ticket = resolved()
    reopened = ticket.applied(ticket.reopen(BOB, "still smoking", now=AT, finished_at=AT - WINDOW, window=WINDOW))
    assert (reopened.status, reopened.assignee, reopened.resolution) == (Status.IN_PROGRESS, "alice", None)
    assert reopened.applied(reopened.resolve("alice", "new fuser")).status is Status.RESOLVED


def test_a_ticket_does_not_reopen_after_the_window_or_before_it_is_finished() -> None:
    late = AT - WINDOW - timedelta(seconds=1)
    assert (
        violation(lambda: resolved().reopen(BOB, "x", now=AT, finished_at=late, window=WINDOW))
        == "reopen_window_passed"
    )
    assert violation(lambda: claimed().reopen(BOB, "x", now=AT, finished_at=AT, window=WINDOW)) == "ticket_not_finished"
    assert violation(lambda: resolved().reopen(BOB, "", now=AT, finished_at=AT, window=WINDOW)) == "reason_required"


def test_a_closed_ticket_reopened_by_a_lead_goes_back_to_its_owner() -> None:
    ticket = resolved()
    ticket = ticket.applied(ticket.close(ALICE))
    # The owner is kept through resolving and closing; a lead's reopen sends it to them.
    reopened = ticket.applied(ticket.reopen(LENA, "customer says no", now=AT, finished_at=AT, window=WINDOW))
    assert reopened.status is Status.IN_PROGRESS and reopened.assignee == "alice"


def test_a_ticket_keeps_its_public_notes_in_order_and_not_its_internal_ones() -> None:
    ticket = claimed()
    ticket = ticket.applied(ticket.add_note("bob", "first", "public"))
    ticket = ticket.applied(ticket.add_note("bob", "between us", "internal"))
    ticket = ticket.applied(ticket.add_note("bob", "second", "public"))
    assert ticket.public_notes == ("first", "second")


def test_a_lead_may_resolve_a_ticket_another_agent_owns() -> None:
    ticket = claimed("alice")
    (event,) = ticket.resolve("lena", "fixed remotely", lead=True)
    assert isinstance(event, TicketResolvedData) and event.resolved_by == "lena"
    assert violation(lambda: ticket.resolve("bob", "fixed remotely")) == "only_owner_can_resolve"


# --- merging and linking ----------------------------------------------------------------

OTHER_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")
THIRD_ID = uuid.UUID("00000000-0000-4000-8000-000000000003")


def another(ticket_id: uuid.UUID = OTHER_ID, number: str = "HD-2") -> Ticket:
    return routed(Ticket.from_events(ticket_id, [open_ticket(number, incident(channel_message_id=number))]))


def merged(source: Ticket, into: Ticket) -> tuple[Ticket, Ticket]:
    mine, theirs = source.merge(Actor("alice"), into, "same outage")
    return source.applied(mine), into.applied(theirs)


def test_a_merged_ticket_is_terminal_and_its_target_records_what_it_received() -> None:
    source, target = merged(routed(new_ticket()), another())
    assert source.status is Status.MERGED and source.merged_into is not None
    assert (source.merged_into.ticket_id, source.merged_into.number) == (OTHER_ID, "HD-2")
    assert [(r.ticket_id, r.number) for r in target.merged_from] == [(TICKET_ID, "HD-1")]
    assert (source.version, target.version) == (4, 4)
    assert not source.accepts_reply()


def test_merging_again_into_the_same_ticket_changes_nothing() -> None:
    source, target = merged(routed(new_ticket()), another())
    assert source.merge(Actor("bob"), target, "again") == ([], [])


@pytest.mark.parametrize(
    "setup, rule",
    [
        (lambda s, t: (s, s), "cannot_merge_into_itself"),
        (lambda s, t: (merged(s, t)[0], another(THIRD_ID, "HD-3")), "ticket_already_merged"),
        (lambda s, t: (s, merged(t, another(THIRD_ID, "HD-3"))[0]), "cannot_merge_into_merged_ticket"),
        (lambda s, t: (s, _closed(t)), "cannot_merge_into_closed_ticket"),
        (lambda s, t: (_closed(s), t), "ticket_closed"),
    ],
)
def test_merge_rules_name_what_forbids_the_merge(setup: object, rule: str) -> None:
    source, target = setup(routed(new_ticket()), another())  # type: ignore[operator]
    assert violation(lambda: source.merge(Actor("lena", lead=True), target, "dup")) == rule


def _closed(ticket: Ticket) -> Ticket:
    ticket = ticket.applied(ticket.claim("alice"))
    ticket = ticket.applied(ticket.resolve("alice", "done"))
    return ticket.applied(ticket.close(Actor("alice")))


def test_an_owned_ticket_is_merged_by_its_owner_or_a_lead_and_an_unowned_one_by_anyone() -> None:
    owned = claimed("alice")
    assert violation(lambda: owned.merge(Actor("bob"), another(), "dup")) == "only_owner_or_lead"
    assert owned.merge(Actor("alice"), another(), "dup")[0]
    assert owned.merge(Actor("lena", lead=True), another(), "dup")[0]
    assert routed(new_ticket()).merge(Actor("bob"), another(), "dup")[0]
    assert violation(lambda: owned.merge(Actor("alice"), another(), " ")) == "reason_required"


def test_a_merged_ticket_takes_no_more_work() -> None:
    source, _ = merged(routed(new_ticket()), another())
    lead = Actor("lena", lead=True)
    for attempt in (
        lambda: source.claim("bob"),
        lambda: source.resolve("lena", "done", lead=True),
        lambda: source.release(lead),
        lambda: source.add_note("bob", "hello", "internal"),
        lambda: source.change_priority(lead, 1, "urgent"),
        lambda: source.close(lead),
        lambda: source.reopen(
            lead, "no", now=datetime.now(UTC), finished_at=datetime.now(UTC), window=timedelta(days=1)
        ),
        lambda: source.link(lead, another(THIRD_ID, "HD-3"), "relates_to"),
        lambda: source.customer_reply(channel=Channel.WEB, message_id="m", received_at=datetime.now(UTC), text="hi"),
    ):
        assert violation(attempt) == "ticket_merged"
    # Routing, escalation and flags arriving late record nothing rather than fail.
    assert source.route(**route_args(1, "network")) == []  # type: ignore[arg-type]
    assert source.escalate(level=2, queue="second-line", reason="late") == []
    assert source.flag("sla_warning", reason="late", raised_by="escalation") == []


def test_a_link_is_recorded_on_both_tickets_with_the_inverse_kind() -> None:
    parent, child = routed(new_ticket()), another()
    mine, theirs = parent.link(Actor("alice"), child, "parent_of")
    parent, child = parent.applied(mine), child.applied(theirs)
    assert [(link.kind, link.number) for link in parent.links] == [("parent_of", "HD-2")]
    assert [(link.kind, link.ticket_id) for link in child.links] == [("child_of", TICKET_ID)]
    assert parent.link(Actor("bob"), child, "parent_of") == ([], [])  # linking twice changes nothing
    assert child.link(Actor("bob"), parent, "child_of") == ([], [])  # nor from the other side


@pytest.mark.parametrize(
    "kind, inverse",
    [("relates_to", "relates_to"), ("duplicate_of", "duplicated_by"), ("caused_by", "causes"), ("causes", "caused_by")],
)
def test_every_link_kind_has_its_inverse(kind: str, inverse: str) -> None:
    _, theirs = routed(new_ticket()).link(Actor("alice"), another(), kind)
    assert theirs[0].kind == inverse  # type: ignore[union-attr]


def test_an_unlink_removes_the_link_from_both_tickets_and_a_missing_link_changes_nothing() -> None:
    source, target = routed(new_ticket()), another()
    mine, theirs = source.link(Actor("alice"), target, "caused_by")
    source, target = source.applied(mine), target.applied(theirs)
    mine, theirs = source.unlink(Actor("bob"), target, "caused_by")
    source, target = source.applied(mine), target.applied(theirs)
    assert (source.links, target.links) == (frozenset(), frozenset())
    assert source.unlink(Actor("bob"), target, "caused_by") == ([], [])


def test_link_rules_name_what_forbids_the_link() -> None:
    ticket = routed(new_ticket())
    assert violation(lambda: ticket.link(Actor("alice"), ticket, "relates_to")) == "cannot_link_to_itself"
    assert violation(lambda: ticket.link(Actor("alice"), another(), "sibling_of")) == "link_kind_unknown"
    gone, _ = merged(another(), another(THIRD_ID, "HD-3"))
    assert violation(lambda: ticket.link(Actor("alice"), gone, "relates_to")) == "ticket_merged"


def test_a_customer_replies_on_an_open_ticket_once_per_message_but_not_on_a_closed_one() -> None:
    ticket = routed(new_ticket())
    at = datetime.now(UTC)
    (reply,) = ticket.customer_reply(channel=Channel.WEB, message_id="api:1", received_at=at, text="still broken")
    ticket = ticket.applied([reply])
    assert ticket.customer_reply(channel=Channel.WEB, message_id="api:1", received_at=at, text="still broken") == []
    closed = _closed(ticket)
    assert (
        violation(lambda: closed.customer_reply(channel=Channel.WEB, message_id="api:2", received_at=at, text="hello?"))
        == "ticket_closed"
    )


def test_a_ticket_claimed_resolved_and_reopened_in_one_run_of_events_goes_back_to_its_owner() -> None:
    ticket = routed(new_ticket())
    claim = ticket.claim("alice")
    after_claim = ticket.applied(claim)
    resolve = after_claim.resolve("alice", "done")
    after_resolve = after_claim.applied(resolve)
    now = datetime.now(UTC)
    reopen = after_resolve.reopen(Actor("bob"), "back", now=now, finished_at=now, window=timedelta(days=1))
    folded = ticket.applied([*claim, *resolve, *reopen])  # as a repository load folds a log
    assert (
        (folded.status, folded.assignee)
        == (Status.IN_PROGRESS, "alice")
        == (
            after_resolve.applied(reopen).status,
            after_resolve.applied(reopen).assignee,
        )
    )


# --- a lead gives a ticket to a named agent --------------------------------------------------


def test_a_lead_gives_an_owned_ticket_to_another_agent_and_what_it_waits_for_stays() -> None:
    waiting = claimed()
    waiting = waiting.applied(waiting.change_status(ALICE, Status.WAITING_ON_CUSTOMER))
    (given,) = waiting.assign_to("bob", lead=LENA, reason="alice is on leave")
    assert (given.agent_id, given.strategy, given.assigned_by, given.reason) == (
        "bob",
        "direct",
        "lena",
        "alice is on leave",
    )
    assert (waiting.applied([given]).assignee, waiting.applied([given]).status) == ("bob", Status.WAITING_ON_CUSTOMER)
    assert waiting.applied([given]).assign_to("bob", lead=LENA, reason="again") == []


def test_a_waiting_ticket_given_to_another_agent_comes_back_from_its_log_still_waiting() -> None:
    log = [open_ticket("HD-1", incident())]
    ticket = Ticket.from_events(TICKET_ID, log)
    for decide in (
        lambda t: t.claim("alice"),
        lambda t: t.change_status(ALICE, Status.WAITING_ON_THIRD_PARTY),
        lambda t: t.assign_to("bob", lead=LENA, reason=""),
    ):
        log += decide(ticket)
        ticket = ticket.applied(log[ticket.version :])
    assert log[-1].reason == "assigned by lena"  # type: ignore[union-attr]
    # Folded in one run from the opening, the assignment sees the wait before it, not the ticket as opened.
    folded = Ticket.from_events(TICKET_ID, log)
    assert folded == ticket
    assert (folded.status, folded.assignee) == (Status.WAITING_ON_THIRD_PARTY, "bob")


def test_only_a_lead_gives_tickets_to_others_and_not_finished_ones() -> None:
    assert violation(lambda: claimed().assign_to("bob", lead=ALICE, reason="swap")) == "only_lead_assigns"
    assert violation(lambda: resolved().assign_to("bob", lead=LENA, reason="")) == "ticket_resolved"
    assert violation(lambda: claimed().assign_to(" ", lead=LENA, reason="")) == "agent_required"
