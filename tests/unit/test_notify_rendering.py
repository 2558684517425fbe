"""Which e-mail notify sends for a message, and how it reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts.envelope import new_envelope
from contracts.incidents import Channel, CustomerProfile
from contracts.notifications import NotificationRequested, NotificationRequestedData, Recipient
from contracts.tickets import TicketOpened, TicketOpenedData, TicketResolved, TicketResolvedData
from services.notify.adapters.smtp import build_message
from services.notify.domain import (
    CustomerContact,
    Email,
    NotSupportedYet,
    UnusableRequest,
    contact_from,
    requested_email,
    resolution_email,
)
from services.notify.rendering import RenderingFailed, Templates

TICKET = uuid.UUID("00000000-0000-4000-8000-000000000012")
CONTACT = CustomerContact(TICKET, "HD-12", "ada@example.com", "Ada Lovelace", "Printer <on fire>")
TEMPLATES = Templates()
REASON = "unclaimed for 15 min at level 1"


def resolved(resolution: str = "Replaced the <b>fuser</b>.") -> TicketResolved:
    data = TicketResolvedData(number="HD-12", version=5, resolution=resolution, resolved_by="agent-7")
    return new_envelope(TicketResolved, data, ticket_id=TICKET)  # type: ignore[return-value]


def request(method: str = "email", email: str | None = "l2-oncall@helpdesk.example") -> NotificationRequested:
    data = NotificationRequestedData(
        number="HD-12",
        recipient=Recipient(kind="level", id="L2", email=email),
        method=method,  # type: ignore[arg-type]
        template="ticket_escalated",
        subject="[HD-12] escalated to L2",
        context={"level": "2", "level_name": "L2", "queue": "L2-specialists", "reason": REASON},
    )
    return new_envelope(NotificationRequested, data, ticket_id=TICKET)  # type: ignore[return-value]


def test_the_contact_is_taken_from_the_opened_tickets_customer() -> None:
    data = TicketOpenedData(
        number="HD-12", version=1, channel=Channel.WEB, channel_message_id="w-1", reported_at=datetime.now(UTC),
        subject="Printer <on fire>", description="", customer=CustomerProfile(identified=False, email="ada@example.com",
                                                                             name="Ada Lovelace"),
    )
    assert contact_from(new_envelope(TicketOpened, data, ticket_id=TICKET)) == CONTACT  # type: ignore[arg-type]


def test_the_resolution_email_goes_to_the_customer_with_a_threading_subject_and_id() -> None:
    event = resolved()
    email = resolution_email(event, CONTACT)
    assert email is not None
    assert email.to == "ada@example.com"
    assert email.subject == "[HD-12] Resolved: Printer <on fire>"
    assert email.message_id == f"<resolved.{event.event_id}@helpdesk>"
    assert email.notification_key == f"resolved.{event.event_id}"


def test_no_resolution_email_without_a_known_customer_address() -> None:
    assert resolution_email(resolved(), None) is None
    no_address = CustomerContact(TICKET, "HD-12", None, "Ada", "Printer")
    assert resolution_email(resolved(), no_address) is None


def test_the_resolution_text_says_the_incident_is_resolved_and_what_was_done() -> None:
    body = TEMPLATES.render(resolution_email(resolved(), CONTACT))  # type: ignore[arg-type]
    assert "Dear Ada Lovelace," in body.text
    assert "Your incident HD-12 is resolved." in body.text
    assert "Replaced the <b>fuser</b>." in body.text


def test_the_resolution_html_escapes_what_the_agent_and_customer_wrote() -> None:
    body = TEMPLATES.render(resolution_email(resolved(), CONTACT))  # type: ignore[arg-type]
    assert "Replaced the &lt;b&gt;fuser&lt;/b&gt;." in body.html
    assert "Printer &lt;on fire&gt;" in body.html
    assert "<b>fuser</b>" not in body.html


def test_the_mime_message_has_text_and_html_alternatives_and_the_deterministic_message_id() -> None:
    email = resolution_email(resolved(), CONTACT)
    assert email is not None
    message = build_message(email, TEMPLATES.render(email), sender="helpdesk@helpdesk.example", date=datetime.now(UTC))
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Message-ID"] == email.message_id
    assert (message["From"], message["To"]) == ("helpdesk@helpdesk.example", "ada@example.com")
    assert message["Subject"] == "[HD-12] Resolved: Printer <on fire>"


def test_an_email_request_is_sent_to_the_recipient_with_the_requested_subject() -> None:
    req = request()
    email = requested_email(req)
    assert (email.to, email.subject, email.template) == ("l2-oncall@helpdesk.example", "[HD-12] escalated to L2",
                                                         "ticket_escalated")
    assert email.message_id == f"<request.{req.event_id}@helpdesk>"
    body = TEMPLATES.render(email)
    assert "Ticket HD-12 has been escalated to L2 (queue L2-specialists)." in body.text
    assert REASON in body.html


@pytest.mark.parametrize("method", ["sms", "pager", "phone", "alarm", "flag"])
def test_methods_other_than_email_are_refused_as_not_built_yet(method: str) -> None:
    with pytest.raises(NotSupportedYet, match=f"method {method} not supported yet"):
        requested_email(request(method))


def test_an_email_request_without_an_address_can_never_be_sent() -> None:
    with pytest.raises(UnusableRequest, match="no e-mail address"):
        requested_email(request(email=None))


def test_an_unknown_template_fails_rendering_with_its_name() -> None:
    email = Email("k", uuid.uuid4(), "email", "a@example.com", "s", "no_such_template", {"number": "HD-1"})
    with pytest.raises(RenderingFailed, match="no_such_template"):
        TEMPLATES.render(email)


def test_a_template_missing_a_required_value_fails_rather_than_rendering_a_blank() -> None:
    email = Email("k", uuid.uuid4(), "email", "a@example.com", "s", "ticket_resolved", {"number": "HD-1"})
    with pytest.raises(RenderingFailed, match="undefined"):
        TEMPLATES.render(email)
