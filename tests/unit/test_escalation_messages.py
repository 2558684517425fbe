"""What an escalation sends: the command, the level's e-mail, and one request per extra contact, with stable ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from contracts.commands import EscalateTicket
from contracts.notifications import NotificationRequested
from services.escalation.domain import (
    Contact,
    Deadline,
    DeadlineState,
    EscalationPolicy,
    Level,
    escalation_due,
)
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
    command, email, *contacts = sent()
    assert isinstance(command, EscalateTicket) and command.data.queue == "L2-specialists"
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
