"""What an escalation sends: the command, the on-call agent's assignment, the level's e-mail, and one request
per extra contact, with stable ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from contracts.commands import AssignTicket, EscalateTicket
from contracts.notifications import NotificationRequested
from services.escalation.domain.breaches import escalation_due
from services.escalation.domain.deadline import Deadline, DeadlineState
from services.escalation.domain.message_ids import assign_command_id
from services.escalation.domain.policy import Contact, EscalationPolicy, Level
from services.escalation.timer import escalation_messages

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
TICKET = uuid.UUID("00000000-0000-4000-8000-000000000077")
LEVELS = (
    Level(1, "L1", None, "l1@helpdesk.example"),
    Level(2, "L2", "L2-specialists", "l2@helpdesk.example",
          notify=(Contact("sms", phone="+4930123456"), Contact("pager", id="l2-pager"), Contact("flag")),
          agent="alice"),
)
POLICY = EscalationPolicy(LEVELS, unclaimed_after=timedelta(minutes=15))


def sent() -> list[object]:
    deadline = Deadline(TICKET, "HD-77", 1, "hardware", T0, DeadlineState.PENDING, "corr-77", policy="p1-outage")
    escalation = escalation_due(deadline, POLICY, T0)
    assert escalation is not None
    return [o.message for o in escalation_messages(escalation, T0)]


def test_an_escalation_sends_the_command_the_email_and_every_contact_of_the_level() -> None:
    command, assign, email, *contacts = sent()
    assert isinstance(command, EscalateTicket) and command.data.queue == "L2-specialists"
    assert command.data.targets == ["first_response"]  # a claim meanwhile voids it
    assert isinstance(assign, AssignTicket)
    assert isinstance(email, NotificationRequested) and email.data.method == "email"
    assert email.data.recipient.email == "l2@helpdesk.example"
    methods = [(m.data.method, m.data.recipient.kind, m.data.recipient.id, m.data.recipient.phone)
               for m in contacts]  # type: ignore[attr-defined]
    assert methods == [("sms", "agent", "alice", "+4930123456"), ("pager", "agent", "l2-pager", None),
                       ("flag", "agent", "alice", None)]
    assert all(m.data.context["policy"] == "p1-outage" for m in contacts)  # type: ignore[attr-defined]


def test_sending_again_gives_the_same_ids_and_every_id_is_different() -> None:
    first, again = [m.event_id for m in sent()], [m.event_id for m in sent()]  # type: ignore[attr-defined]
    assert first == again
    assert len(set(first)) == len(first)


def test_a_level_with_an_on_call_agent_assigns_the_ticket_to_them_after_the_escalation() -> None:
    command, assign, *_ = sent()
    assert isinstance(command, EscalateTicket) and isinstance(assign, AssignTicket)
    assert (assign.data.agent_id, assign.data.strategy) == ("alice", "direct")
    assert assign.ticket_id == command.ticket_id == TICKET
    assert assign.causation_id == str(command.event_id)
    assert assign.event_id == assign_command_id(TICKET, 2)


def test_a_level_without_an_on_call_agent_assigns_nobody() -> None:
    policy = EscalationPolicy((LEVELS[0], Level(2, "L2", "L2-specialists", "l2@helpdesk.example")),
                              unclaimed_after=timedelta(minutes=15))
    deadline = Deadline(TICKET, "HD-77", 1, "hardware", T0, DeadlineState.PENDING, "corr-77")
    escalation = escalation_due(deadline, policy, T0)
    assert escalation is not None
    assert not [o for o in escalation_messages(escalation, T0) if isinstance(o.message, AssignTicket)]


def test_a_level_that_is_only_an_on_call_agent_leaves_the_ticket_in_its_queue() -> None:
    policy = EscalationPolicy((LEVELS[0], Level(2, "duty", None, "duty@helpdesk.example", agent="bob")),
                              unclaimed_after=timedelta(minutes=15))
    deadline = Deadline(TICKET, "HD-77", 1, "hardware", T0, DeadlineState.PENDING, "corr-77")
    escalation = escalation_due(deadline, policy, T0)
    assert escalation is not None
    command, assign, *_ = [o.message for o in escalation_messages(escalation, T0)]
    assert isinstance(command, EscalateTicket) and command.data.queue == "hardware"
    assert isinstance(assign, AssignTicket) and assign.data.agent_id == "bob"
