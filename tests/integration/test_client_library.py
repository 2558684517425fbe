"""The Python client against the real ticket service (a process on a loopback port): every call an agent makes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from helpdesk_client import (
    NO_RETRIES,
    ConflictError,
    Forbidden,
    HelpdeskClient,
    NotFound,
    RuleViolation,
    TicketDetail,
    TicketView,
    TransportError,
    Unauthorized,
    ValidationError,
)

from tests.support.ticket_service_http import (
    TicketService,
    free_port,
)


@pytest.fixture
def desk(ticket_service: TicketService) -> Iterator[HelpdeskClient]:
    with HelpdeskClient(ticket_service.url, token=ticket_service.token("alice")) as client:
        yield client


@pytest.fixture
def lead(ticket_service: TicketService) -> Iterator[HelpdeskClient]:
    with HelpdeskClient(ticket_service.url, token=ticket_service.token("lena", ("agent", "lead"))) as client:
        yield client


def a_queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


def test_a_ticket_reads_with_its_timeline_and_as_it_stood_earlier(
    ticket_service: TicketService,
    desk: HelpdeskClient,
) -> None:
    number = ticket_service.open_ticket(queue=a_queue(), subject="VPN drops")
    ticket = desk.get_ticket(number)
    assert isinstance(ticket, TicketDetail)
    assert (ticket.number, ticket.status, ticket.version, ticket.priority) == (
        number,
        "open",
        3,
        3,
    )
    assert [e.type for e in ticket.history] == [
        "ticket.opened",
        "ticket.prioritised",
        "ticket.routed",
    ]
    assert desk.get_ticket(ticket.ticket_id).number == number  # by id as well as by number
    before_routing = ticket.history[1].occurred_at - timedelta(microseconds=1)
    assert desk.get_ticket(number, as_of=before_routing).version == 1
    with pytest.raises(NotFound) as missing:
        desk.get_ticket(number, as_of=ticket.opened_at - timedelta(days=1))
    assert missing.value.problem.slug == "ticket-not-found"


def test_an_unknown_ticket_raises_not_found_with_the_problems_fields(
    desk: HelpdeskClient,
) -> None:
    with pytest.raises(NotFound) as error:
        desk.get_ticket("HD-999999")
    problem = error.value.problem
    assert (problem.status, problem.type) == (
        404,
        "urn:helpdesk:problem:ticket-not-found",
    )
    assert "HD-999999" in problem.detail and str(error.value) == problem.detail


def test_listing_pages_through_every_matching_ticket(
    ticket_service: TicketService,
    desk: HelpdeskClient,
) -> None:
    queue = a_queue()
    numbers = ticket_service.open_tickets(120, queue=queue)
    seen = list(desk.list_tickets(queue=queue, page_size=25))  # five pages of 25 (the last one empty)
    assert all(isinstance(t, TicketView) for t in seen)
    assert [t.number for t in seen] == list(reversed(numbers))  # each once, newest first
    one_page = [t.number for t in desk.list_tickets(queue=queue, priority=3, page_size=500)]
    assert one_page == [t.number for t in seen]
    assert list(desk.list_tickets(queue=queue, priority=1)) == []


def test_search_finds_tickets_by_their_text(ticket_service: TicketService, desk: HelpdeskClient) -> None:
    word = f"printer{uuid.uuid4().hex[:6]}"
    wanted = ticket_service.open_tickets(3, queue=a_queue(), subject=f"Broken {word}")
    ticket_service.open_tickets(2, queue=a_queue(), subject="Something else")
    assert sorted(t.number for t in desk.search(word, page_size=2)) == sorted(wanted)


def test_filters_are_checked_before_anything_is_sent(desk: HelpdeskClient) -> None:
    with pytest.raises(TypeError, match="unknown ticket filter"):
        next(desk.list_tickets(colour="red"))
    with pytest.raises(ValueError, match="aware datetime"):
        next(desk.list_tickets(opened_after=datetime(2025, 1, 1)))
    opened_after = datetime.now(UTC) + timedelta(days=1)
    assert list(desk.list_tickets(opened_after=opened_after)) == []


def test_queues_show_their_depth_and_their_line_in_order(
    ticket_service: TicketService,
    desk: HelpdeskClient,
) -> None:
    queue = a_queue()
    later = ticket_service.open_tickets(2, queue=queue, priority=3)
    urgent = ticket_service.open_ticket(queue=queue, priority=1)
    summary = {q.queue: q for q in desk.queues()}[queue]
    assert summary.depth == 3 and summary.oldest_opened_at is not None and summary.oldest_age_s is not None
    assert [t.number for t in desk.queue_line(queue)] == [urgent, *later]


def test_take_next_claims_the_head_of_the_line_until_nobody_waits(
    ticket_service: TicketService,
    desk: HelpdeskClient,
) -> None:
    queue = a_queue()
    first, second = ticket_service.open_tickets(2, queue=queue)
    taken = desk.take_next(queue)
    assert taken is not None and (taken.number, taken.assignee, taken.status) == (
        first,
        "alice",
        "in_progress",
    )
    assert desk.take_next(queue).number == second  # type: ignore[union-attr]
    assert desk.take_next(queue) is None


def test_an_agent_works_a_ticket_from_claim_to_close(
    ticket_service: TicketService,
    desk: HelpdeskClient,
    lead: HelpdeskClient,
) -> None:
    number = ticket_service.open_ticket(queue=a_queue())
    ticket = desk.claim(number, expected_version=3)
    assert (ticket.assignee, ticket.version) == ("alice", 4)
    ticket = desk.add_note(number, "Called back, no answer", expected_version=ticket.version)
    ticket = desk.add_note(number, "We are on it", public=True)
    notes = [e.data for e in ticket.history if e.type == "ticket.note_added"]
    assert [(n["text"], n["visibility"]) for n in notes] == [
        ("Called back, no answer", "internal"),
        ("We are on it", "public"),
    ]
    assert desk.change_status(number, "waiting_on_customer").status == "waiting_on_customer"
    assert desk.change_priority(number, 1, "whole floor is down").priority == 1
    new_queue = a_queue()
    assert desk.move_queue(number, new_queue, "it is the VPN").queue == new_queue
    resolved = desk.resolve(number, "Replaced the VPN token")
    assert (resolved.status, resolved.resolution, resolved.resolved_by) == (
        "resolved",
        "Replaced the VPN token",
        "alice",
    )
    reopened = desk.reopen(number, "it drops again")
    assert (reopened.status, reopened.resolution) == ("in_progress", None)
    desk.resolve(number, "Replaced the cable too")
    closed = lead.close_ticket(number)
    assert closed.status == "closed"
    released = ticket_service.open_ticket(queue=a_queue())
    desk.claim(released)
    assert (desk.release(released).status, desk.get_ticket(released).assignee) == (
        "open",
        None,
    )


def test_a_stale_write_raises_a_conflict_carrying_the_current_version(
    ticket_service: TicketService,
    desk: HelpdeskClient,
) -> None:
    number = ticket_service.open_ticket(queue=a_queue())
    desk.add_note(number, "someone else wrote meanwhile")  # version 4
    with pytest.raises(ConflictError) as stale:
        desk.claim(number, expected_version=3)
    assert stale.value.current_version == 4
    assert stale.value.problem.status in (409, 412)
    assert desk.get_ticket(number).assignee is None  # nothing changed


def test_the_server_answers_a_stale_write_with_409_stale_version(
    ticket_service: TicketService,
    desk: HelpdeskClient,
) -> None:
    number = ticket_service.open_ticket(queue=a_queue())
    desk.add_note(number, "moved on")
    with pytest.raises(ConflictError) as stale:
        desk.claim(number, expected_version=3)
    assert (stale.value.problem.status, stale.value.problem.slug) == (
        409,
        "stale-version",
    )
    assert stale.value.problem.extensions["current_version"] == 4


def test_a_ticket_rule_raises_a_rule_violation_naming_the_rule(
    ticket_service: TicketService,
    desk: HelpdeskClient,
) -> None:
    number = ticket_service.open_ticket(queue=a_queue())
    with HelpdeskClient(ticket_service.url, token=ticket_service.token("bob")) as bob:
        bob.claim(number)
    with pytest.raises(RuleViolation) as refused:
        desk.resolve(number, "done")
    assert refused.value.rule == "only_owner_can_resolve" and refused.value.status == 409
    with pytest.raises(RuleViolation) as blank:
        desk.add_note(number, "   ")
    assert (blank.value.rule, blank.value.status) == ("note_text_required", 422)
    with pytest.raises(ValidationError) as invalid:
        desk.change_priority(number, 9, "off the scale")
    assert invalid.value.problem.extensions["errors"]


def test_deadlines_are_empty_until_escalation_has_set_them(
    ticket_service: TicketService,
    desk: HelpdeskClient,
) -> None:
    number = ticket_service.open_ticket(queue=a_queue())
    none_yet = desk.deadlines(number)
    assert (none_yet.number, none_yet.policy, none_yet.deadlines) == (number, None, [])
    ticket_service.publish_deadlines(number)
    deadlines = desk.deadlines(number)
    assert (deadlines.policy, deadlines.calendar) == ("standard", "office")
    assert [(d.kind, d.state) for d in deadlines.deadlines] == [("resolution", "running")]


def test_missing_expired_or_forged_credentials_raise_unauthorized(
    ticket_service: TicketService,
) -> None:
    tokens = {
        "none": None,
        "expired": ticket_service.token("alice", ttl_s=-120),
        "forged": ticket_service.token("alice")[:-4] + "AAAA",
    }
    for why, token in tokens.items():
        with (
            HelpdeskClient(ticket_service.url, token=token) as client,
            pytest.raises(Unauthorized) as refused,
        ):
            client.queues()
        assert refused.value.status == 401, why
    with (
        HelpdeskClient(ticket_service.url, token=ticket_service.token("x", ("auditor",))) as client,
        pytest.raises(Forbidden),
    ):
        client.queues()


def test_an_unreachable_server_raises_a_transport_error_after_the_retries(
    ticket_service: TicketService,
) -> None:
    with (
        HelpdeskClient(f"http://127.0.0.1:{free_port()}", token="t", retry=NO_RETRIES) as client,
        pytest.raises(TransportError),
    ):
        client.queues()
