"""Which e-mail notify sends for a message, how it reads (per language), and how it threads."""

from __future__ import annotations

import email
import email.policy
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from contracts.envelope import new_envelope
from contracts.incidents import Channel, CustomerProfile
from contracts.notifications import (
    NotificationRequested,
    NotificationRequestedData,
    Recipient,
)
from contracts.tickets import (
    TicketOpened,
    TicketOpenedData,
    TicketResolved,
    TicketResolvedData,
)
from services.notify.adapters.smtp import build_message
from services.notify.domain import (
    CustomerContact,
    Notification,
    UnusableRequest,
    acknowledgement_email,
    contact_from,
    note_email,
    requested_notification,
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


def parsed(raw: bytes) -> EmailMessage:
    """The message as a mail client reads it."""
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_a_subject_in_another_script_is_encoded_and_reads_back_the_same() -> None:
    contact = CustomerContact(TICKET, "HD-12", "ada@example.com", "Ada", "Drucker brennt — 印刷機")
    mail = resolution_email(resolved(), contact)
    assert mail is not None
    raw = build_message(mail, TEMPLATES.render(mail), sender="h@helpdesk.example", date=datetime.now(UTC))
    assert raw.isascii() and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert parsed(raw)["Subject"] == "[HD-12] Resolved: Drucker brennt — 印刷機"


def requested_email(req: NotificationRequested) -> Notification:
    return requested_notification(req, req.data.recipient.email)


def opened(channel: Channel = Channel.WEB, message_id: str = "w-1") -> TicketOpened:
    data = TicketOpenedData(
        number="HD-12", version=1, channel=channel, channel_message_id=message_id, reported_at=datetime.now(UTC),
        subject="Printer <on fire>", description="", customer=CustomerProfile(identified=False, email="ada@example.com",
                                                                             name="Ada Lovelace"),
    )
    return new_envelope(TicketOpened, data, ticket_id=TICKET)  # type: ignore[return-value]


def test_the_contact_is_taken_from_the_opened_tickets_customer() -> None:
    assert contact_from(opened()) == CONTACT


def test_a_ticket_opened_by_email_threads_the_customers_mails_under_their_first_message() -> None:
    contact = contact_from(opened(Channel.EMAIL, "<CAF1234@mail.example.com>"))
    assert contact.thread_root == "<CAF1234@mail.example.com>"
    email = resolution_email(resolved(), contact)
    assert email is not None
    message = parsed(build_message(email, TEMPLATES.render(email), sender="helpdesk@helpdesk.example", date=datetime.now(UTC)))
    assert message["In-Reply-To"] == "<CAF1234@mail.example.com>"
    assert message["References"] == "<CAF1234@mail.example.com>"
    assert contact_from(opened()).thread_root is None  # a web ticket has no mail to answer


def test_our_message_ids_carry_the_ticket_number_the_way_intake_reads_replies() -> None:
    from services.intake.replies import number_in_thread

    email = resolution_email(resolved(), CONTACT)
    assert email is not None
    assert number_in_thread([email.message_id]) == "HD-12"


def test_the_acknowledgement_gives_the_number_and_how_to_reply() -> None:
    event = opened()
    email = acknowledgement_email(event, contact_from(event), "support@helpdesk.example")
    assert email is not None
    assert email.subject == "[HD-12] Received: Printer <on fire>"
    assert email.message_id == f"<opened.{event.event_id}.HD-12@helpdesk>"
    body = TEMPLATES.render(email)
    assert "opened ticket HD-12" in body.text and "support@helpdesk.example" in body.text
    assert "[HD-12] in the subject" in body.text
    assert "Printer &lt;on fire&gt;" in body.html


def test_a_customer_with_a_language_gets_that_languages_template_and_the_default_otherwise() -> None:
    german = CustomerContact(TICKET, "HD-12", "ada@example.com", "Ada", "Drucker", language="de-AT")
    body = TEMPLATES.render(resolution_email(resolved(), german))  # type: ignore[arg-type]
    assert "Ihr Vorfall HD-12 ist gelöst." in body.text and 'lang="de"' in body.html
    klingon = CustomerContact(TICKET, "HD-12", "ada@example.com", "Ada", "Printer", language="tlh")
    assert "Your incident HD-12 is resolved." in TEMPLATES.render(resolution_email(resolved(), klingon)).text  # type: ignore[arg-type]


def test_a_public_note_is_mailed_to_the_customer_and_an_internal_one_is_not() -> None:
    class Note:  # the shape ticket.note_added will have (issue 3)
        def __init__(self, visibility: str) -> None:
            self.type, self.event_id, self.correlation_id = "ticket.note_added", uuid.uuid4(), "c"
            self.data = type("D", (), {"visibility": visibility, "text": "Engineer <on site> at 3pm", "author": "alice"})

    public = Note("public")
    email = note_email(public, CONTACT)
    assert email is not None and email.to == "ada@example.com"
    assert email.subject == "[HD-12] Update: Printer <on fire>"
    body = TEMPLATES.render(email)
    assert "Engineer <on site> at 3pm" in body.text and "Engineer &lt;on site&gt; at 3pm" in body.html
    assert note_email(Note("internal"), CONTACT) is None


def test_the_resolution_email_goes_to_the_customer_with_a_threading_subject_and_id() -> None:
    event = resolved()
    email = resolution_email(event, CONTACT)
    assert email is not None
    assert email.to == "ada@example.com"
    assert email.subject == "[HD-12] Resolved: Printer <on fire>"
    assert email.message_id == f"<resolved.{event.event_id}.HD-12@helpdesk>"
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
    message = parsed(build_message(email, TEMPLATES.render(email), sender="helpdesk@helpdesk.example", date=datetime.now(UTC)))
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert "Replaced the <b>fuser</b>." in message.get_body(preferencelist=("plain",)).get_content()
    assert "Replaced the &lt;b&gt;fuser&lt;/b&gt;." in message.get_body(preferencelist=("html",)).get_content()
    assert message["Message-ID"] == email.message_id
    assert (message["From"], message["To"]) == ("helpdesk@helpdesk.example", "ada@example.com")
    assert message["Subject"] == "[HD-12] Resolved: Printer <on fire>"


def test_an_email_request_is_sent_to_the_recipient_with_the_requested_subject() -> None:
    req = request()
    email = requested_email(req)
    assert (email.to, email.subject, email.template) == ("l2-oncall@helpdesk.example", "[HD-12] escalated to L2",
                                                         "ticket_escalated")
    assert email.message_id == f"<request.{req.event_id}.HD-12@helpdesk>"
    body = TEMPLATES.render(email)
    assert "Ticket HD-12 has been escalated to L2 (queue L2-specialists)." in body.text
    assert REASON in body.html


@pytest.mark.parametrize(("method", "problem"), [("sms", "no phone number"), ("phone", "no phone number"),
                                                  ("pager", "no pager route")])
def test_a_request_without_an_address_for_its_method_can_never_be_sent(method: str, problem: str) -> None:
    with pytest.raises(UnusableRequest, match=problem):
        requested_notification(request(method), None)


def test_an_sms_request_renders_one_short_line() -> None:
    sms = requested_notification(request("sms"), "+441610000002")
    body = TEMPLATES.render(sms)
    assert body.short == f"[HD-12] escalated to L2 (L2-specialists): {REASON}"


def test_an_email_request_without_an_address_can_never_be_sent() -> None:
    with pytest.raises(UnusableRequest, match="no e-mail address"):
        requested_email(request(email=None))


def test_an_unknown_template_fails_rendering_with_its_name() -> None:
    email = Notification("k", uuid.uuid4(), "email", "a@example.com", "s", "no_such_template", {"number": "HD-1"})
    with pytest.raises(RenderingFailed, match="no_such_template"):
        TEMPLATES.render(email)


def test_a_template_missing_a_required_value_fails_rather_than_rendering_a_blank() -> None:
    email = Notification("k", uuid.uuid4(), "email", "a@example.com", "s", "ticket_resolved", {"number": "HD-1"})
    with pytest.raises(RenderingFailed, match="undefined"):
        TEMPLATES.render(email)


def test_the_sla_warning_escalation_sends_renders_with_its_context() -> None:
    data = NotificationRequestedData(
        number="HD-12",
        recipient=Recipient(kind="level", id="L1", email="l1-oncall@helpdesk.example"),
        method="email",
        template="sla_warning",
        subject="[HD-12] 75% of its response target used at L1",
        context={"number": "HD-12", "level": "1", "level_name": "L1", "queue": "L1-service-desk",
                 "percent": "75", "deadline": "2026-11-26T10:00:00+00:00", "policy": "standard"},
    )
    warning = new_envelope(NotificationRequested, data, ticket_id=TICKET)
    rendered = TEMPLATES.render(requested_email(warning))  # type: ignore[arg-type]
    assert "75% of its time at L1" in rendered.text
    assert "under the standard policy" in rendered.text
