"""Reading mail into incidents: sender, subject, text or HTML, attachments, threading, ids."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.incidents import Channel
from services.intake.channels.mail import (
    Mail,
    MalformedMail,
    html_to_text,
    incident_from_mail,
)

NOW = datetime(2026, 3, 14, 9, 26, tzinfo=UTC)


def mail(**headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.pop("From", "Ada Lovelace <ada.lovelace@example.com>")
    message["To"] = "helpdesk@example.com"
    message["Subject"] = headers.pop("Subject", "VPN drops every ten minutes")
    message["Message-ID"] = headers.pop("Message_ID", "<CAF3x9@mail.example.com>")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return message


def read(message: EmailMessage, mail_from: str | None = None):  # type: ignore[no-untyped-def]
    return incident_from_mail(Mail(message.as_bytes(), mail_from), NOW)


def test_a_plain_mail_becomes_an_email_incident_from_its_sender() -> None:
    message = mail()
    message.set_content("Since this morning; I cannot reach SAP.\n")
    data = read(message)
    assert data.channel is Channel.EMAIL
    assert data.channel_message_id == "<CAF3x9@mail.example.com>"
    assert (data.contact.email, data.contact.name) == ("ada.lovelace@example.com", "Ada Lovelace")
    assert data.subject == "VPN drops every ten minutes"
    assert data.description == "Since this morning; I cannot reach SAP."
    assert data.received_at == NOW and data.attachments == [] and data.reply_to_number is None


def test_an_html_only_mail_is_described_by_its_text() -> None:
    message = mail()
    message.set_content(
        "<html><head><style>p{color:red}</style></head><body><p>The <b>printer</b> &amp; scanner</p>"
        "<script>alert(1)</script><p>are offline.</p></body></html>",
        subtype="html",
    )
    assert read(message).description == "The printer & scanner\n\nare offline."


def test_the_text_part_is_preferred_to_the_html_part() -> None:
    message = mail()
    message.set_content("plain words")
    message.add_alternative("<p>html words</p>", subtype="html")
    assert read(message).description == "plain words"


def test_attachments_are_listed_with_name_type_and_size() -> None:
    message = mail()
    message.set_content("screenshot attached")
    message.add_attachment(b"\x89PNG" + b"\x00" * 996, maintype="image", subtype="png", filename="error.png")
    message.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="export.csv")
    data = read(message)
    assert data.description == "screenshot attached"
    assert [(a.filename, a.content_type, a.size_bytes) for a in data.attachments] == [
        ("error.png", "image/png", 1000),
        ("export.csv", "text/csv", 8),
    ]


@pytest.mark.parametrize(
    "subject",
    ["Re: [HD-12] Resolved: VPN drops", "AW: hd-12 still broken", "Fwd: Re: (HD-0012)", "[HD-12]"],
)
def test_a_ticket_number_in_the_subject_makes_the_mail_a_reply(subject: str) -> None:
    assert read(mail(Subject=subject)).reply_to_number == "HD-12"


def test_a_reply_to_one_of_our_mails_is_threaded_by_its_message_id() -> None:
    message = mail(
        Subject="Re: your ticket",
        In_Reply_To="<resolved.6d1f0a8e-2f0b-4b7e-9a57-3d6c9b1e2a10.HD-41@helpdesk>",
        References="<unrelated@mail.example.com> <resolved.6d1f0a8e-2f0b-4b7e-9a57-3d6c9b1e2a10.HD-41@helpdesk>",
    )
    assert read(message).reply_to_number == "HD-41"


@pytest.mark.parametrize("subject", ["Order HD-123456789012345 failed", "SHD-12 alarm", "Re: new laptop"])
def test_a_subject_without_a_ticket_number_is_a_new_incident(subject: str) -> None:
    references = "<CAF3x9@mail.example.com> <4711@other.example>"
    assert read(mail(Subject=subject, References=references)).reply_to_number is None


def test_a_mail_without_message_id_gets_an_id_its_retransmission_repeats() -> None:
    message = mail()
    del message["Message-ID"]
    first, again = read(message), read(message)
    assert first.channel_message_id.startswith("sha256:")
    assert first.channel_message_id == again.channel_message_id


def test_the_envelope_sender_answers_when_the_from_header_has_no_address() -> None:
    message = mail(From="undisclosed-recipients:;")
    assert read(message, mail_from="bounce@example.com").contact.email == "bounce@example.com"


def test_a_mail_without_a_valid_sender_address_is_kept_without_one_and_the_agent_sees_what_it_said() -> None:
    message = mail(From="nobody at all")
    message.set_content("Please call me back.")
    data = read(message, mail_from="also garbage")
    assert data.contact.email is None
    assert data.description.startswith("Please call me back.")
    assert 'the From: header was \'"nobody at all"\'' in data.description


def test_a_from_address_with_a_line_break_is_not_taken_and_the_envelope_sender_answers() -> None:
    raw = mail().as_bytes().replace(b"ada.lovelace@example.com", b"ada@example.com\r\nBcc: eve@example.net", 1)
    data = incident_from_mail(Mail(raw, "ada@example.com"), NOW)
    assert data.contact.email == "ada@example.com"


def test_an_empty_subject_and_body_still_make_an_incident() -> None:
    data = read(mail(Subject="   "))
    assert (data.subject, data.description) == ("(no subject)", "")


def test_a_long_subject_is_cut_to_what_a_ticket_holds() -> None:
    assert len(read(mail(Subject="x" * 1000)).subject) == 300


def test_html_to_text_keeps_words_apart_and_drops_markup() -> None:
    assert html_to_text("<div>one</div><div>two<br>three</div>") == "one\n\ntwo\nthree"
    assert html_to_text("") == ""


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000), st.one_of(st.none(), st.text(max_size=50)))
def test_arbitrary_bytes_are_read_or_refused_never_crash(content: bytes, mail_from: str | None) -> None:
    try:
        incident_from_mail(Mail(content, mail_from), NOW)
    except MalformedMail:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.text(max_size=2000), st.text(max_size=200))
def test_arbitrary_headers_and_bodies_are_read_or_refused_never_crash(subject: str, body: str, refs: str) -> None:
    raw = f"From: a@example.com\r\nSubject: {subject}\r\nReferences: {refs}\r\n\r\n{body}".encode(
        "utf-8", "surrogatepass"
    )
    try:
        incident_from_mail(Mail(raw), NOW)
    except MalformedMail:
        pass
