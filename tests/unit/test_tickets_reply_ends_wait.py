"""A customer's reply ends a wait: the ticket's status and escalation's SLA clock agree afterwards.

The ticket's own decisions are checked on the aggregate; then the very events it
records are folded by escalation, as its consumer would fold them off the topic.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.incidents import Channel, CustomerProfile, IncidentIdentifiedData
from contracts.tickets import TicketCustomerRepliedData, TicketStatusChangedData
from services.escalation.calendar import TWENTY_FOUR_SEVEN
from services.escalation.domain.deadline import Deadline
from services.escalation.domain.policy import EscalationPolicy, Level
from services.escalation.domain.ticket_events import fold
from services.escalation.sla import PolicyMatch, SlaPolicies, SlaPolicy, SlaTargets
from services.tickets.adapters.repository import recorded
from services.tickets.domain import Actor, Status, Ticket, TicketEvent, open_ticket

TICKET_ID = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
OPENED_AT = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
ALICE = Actor("alice")
POLICY = EscalationPolicy(
    (Level(1, "L1", None, "l1@helpdesk.example"), Level(2, "L2", "L2", "l2@helpdesk.example")),
    sla=SlaPolicies((SlaPolicy("all", PolicyMatch(), TWENTY_FOUR_SEVEN, SlaTargets(timedelta(hours=4))),)),
)


def incident() -> IncidentIdentifiedData:
    return IncidentIdentifiedData(
        channel=Channel.EMAIL,
        channel_message_id="opening@example.com",
        received_at=OPENED_AT,
        subject="VPN drops every hour",
        customer=CustomerProfile(identified=True, identified_by="email", customer_id="c-7"),
    )


def reply(ticket: Ticket, message_id: str = "reply-1@example.com") -> list[TicketEvent]:
    return ticket.record_reply(
        channel=Channel.EMAIL, channel_message_id=message_id, received_at=OPENED_AT, text="Here is the log you asked for"
    )


def claimed() -> Ticket:
    ticket = Ticket.from_events(TICKET_ID, [open_ticket("HD-1", incident())])
    return ticket.applied(ticket.claim("alice"))


@pytest.mark.parametrize("wait", [Status.WAITING_ON_CUSTOMER, Status.WAITING_ON_THIRD_PARTY])
def test_a_customer_reply_to_a_waiting_ticket_puts_it_back_in_progress_in_the_same_decision(wait: Status) -> None:
    waiting = claimed().applied(claimed().change_status(ALICE, wait))
    replied, back = reply(waiting)
    assert isinstance(replied, TicketCustomerRepliedData)
    assert isinstance(back, TicketStatusChangedData)
    assert (back.status, back.previous_status, back.by) == ("in_progress", wait.value, "customer")
    assert back.reason == "the customer replied by email"
    assert [replied.version, back.version] == [waiting.version + 1, waiting.version + 2]
    after = waiting.applied([replied, back])
    assert (after.status, after.assignee) == (Status.IN_PROGRESS, "alice")


def test_after_a_reply_the_owner_can_wait_on_the_customer_again_and_that_is_recorded() -> None:
    ticket = claimed()
    ticket = ticket.applied(ticket.change_status(ALICE, Status.WAITING_ON_CUSTOMER))
    ticket = ticket.applied(reply(ticket))
    [again] = ticket.change_status(ALICE, Status.WAITING_ON_CUSTOMER)
    assert isinstance(again, TicketStatusChangedData) and again.previous_status == "in_progress"


@pytest.mark.parametrize("status", ["open", "in_progress", "resolved"])
def test_a_reply_to_a_ticket_that_is_not_waiting_changes_no_status(status: str) -> None:
    ticket = Ticket.from_events(TICKET_ID, [open_ticket("HD-1", incident())])
    if status != "open":
        ticket = claimed()
    if status == "resolved":
        ticket = ticket.applied(ticket.resolve("alice", "Replaced the token"))
    [replied] = reply(ticket)
    assert isinstance(replied, TicketCustomerRepliedData)
    assert ticket.applied([replied]).status == ticket.status


def test_a_redelivered_reply_records_neither_the_reply_nor_a_status_change_again() -> None:
    ticket = claimed()
    ticket = ticket.applied(ticket.change_status(ALICE, Status.WAITING_ON_CUSTOMER))
    ticket = ticket.applied(reply(ticket))
    assert reply(ticket) == []


# --- what escalation makes of it ------------------------------------------------------


class Timeline:
    """A ticket's decisions as the log records them (one moment per decision), and escalation's clock over them."""

    def __init__(self) -> None:
        self.ticket = Ticket.from_events(TICKET_ID, [open_ticket("HD-1", incident())])
        self.messages: list[Any] = recorded(TICKET_ID, [open_ticket("HD-1", incident())], at=OPENED_AT)
        self.deadline: Deadline = fold({}, self.messages, POLICY)[TICKET_ID]

    def decide(self, events: list[TicketEvent], minutes: int) -> None:
        assert events, "the decision records something"
        messages = recorded(TICKET_ID, events, at=OPENED_AT + timedelta(minutes=minutes))
        self.ticket = self.ticket.applied(events)
        self.messages += messages
        self.deadline = fold({TICKET_ID: self.deadline}, messages, POLICY).get(TICKET_ID, self.deadline)

    @property
    def clock_paused(self) -> bool:
        return self.deadline.paused_at is not None


def test_escalations_clock_and_the_status_agree_through_a_reply_and_a_second_wait() -> None:
    day = Timeline()
    day.decide(day.ticket.claim("alice"), minutes=5)
    day.decide(day.ticket.change_status(ALICE, Status.WAITING_ON_CUSTOMER), minutes=10)
    assert day.clock_paused and day.ticket.status is Status.WAITING_ON_CUSTOMER

    day.decide(reply(day.ticket), minutes=40)  # the reply and the status change, recorded together
    assert not day.clock_paused and day.ticket.status is Status.IN_PROGRESS
    assert day.deadline.paused_total_s == 30 * 60, "the wait counted once, not again for the status change"

    day.decide(day.ticket.change_status(ALICE, Status.WAITING_ON_CUSTOMER), minutes=50)
    assert day.clock_paused and day.ticket.status is Status.WAITING_ON_CUSTOMER

    # The whole log folded at once (a rebuild) gives the same clock as folding it decision by decision.
    assert fold({}, day.messages, POLICY)[TICKET_ID] == day.deadline
