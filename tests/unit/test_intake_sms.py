"""Twilio's inbound SMS: the request signature, and the message read into an incident."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.incidents import Channel
from services.intake.channels.twilio import (
    MalformedSms,
    incident_from_sms,
    parse_form,
    signature,
    signed_by_twilio,
)

NOW = datetime(2026, 3, 14, 9, 26, tzinfo=UTC)


def test_the_signature_matches_twilios_documented_example() -> None:
    # The worked example of https://www.twilio.com/docs/usage/security#validating-requests
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    form = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"), ("Digits", "1234"),
            ("From", "+14158675309"), ("To", "+18005551212")]  # fmt: skip
    assert signature("12345", url, form) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert signed_by_twilio("12345", url, form, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_a_changed_parameter_url_or_token_breaks_the_signature() -> None:
    form = [("From", "+447700900123"), ("Body", "hello")]
    good = signature("token", "https://h.example/v1/channels/sms/twilio", form)
    assert not signed_by_twilio(
        "token", "https://h.example/v1/channels/sms/twilio", [("From", "+447700900123"), ("Body", "hellO")], good
    )
    assert not signed_by_twilio("token", "https://evil.example/v1/channels/sms/twilio", form, good)
    assert not signed_by_twilio("other", "https://h.example/v1/channels/sms/twilio", form, good)
    assert not signed_by_twilio("token", "https://h.example/v1/channels/sms/twilio", form, "")


def test_an_sms_becomes_an_incident_from_the_senders_number() -> None:
    form = [("MessageSid", "SM0123456789abcdef"), ("From", "+447700900123"), ("To", "+441234567890"),
            ("Body", "Laptop will not boot\nblue screen since the update"), ("NumMedia", "1"),
            ("MediaUrl0", "https://api.twilio.com/media/1"), ("MediaContentType0", "image/jpeg")]  # fmt: skip
    data = incident_from_sms(form, NOW)
    assert (data.channel, data.channel_message_id, data.contact.phone) == (
        Channel.SMS,
        "SM0123456789abcdef",
        "+447700900123",
    )
    assert data.subject == "Laptop will not boot"
    assert data.description == "Laptop will not boot\nblue screen since the update"
    assert [(a.content_type, a.size_bytes) for a in data.attachments] == [("image/jpeg", None)]
    assert data.reply_to_number is None


def test_an_sms_naming_a_ticket_is_a_reply_to_it() -> None:
    form = [("MessageSid", "SM1"), ("From", "+447700900123"), ("Body", "hd-31 still not working")]
    assert incident_from_sms(form, NOW).reply_to_number == "HD-31"


def test_an_empty_sms_is_still_a_contact() -> None:
    data = incident_from_sms([("MessageSid", "SM2"), ("From", "+447700900123"), ("Body", "")], NOW)
    assert data.subject == "SMS from +447700900123"


@pytest.mark.parametrize("form", [[("From", "+447700900123")], [("MessageSid", "SM3")], []])
def test_an_sms_without_sid_or_sender_is_refused(form: list[tuple[str, str]]) -> None:
    with pytest.raises(MalformedSms, match="missing"):
        incident_from_sms(form, NOW)


def test_a_body_that_is_not_a_form_is_refused() -> None:
    with pytest.raises(MalformedSms):
        parse_form(b"\xff\xfe not utf-8")
    with pytest.raises(MalformedSms):
        parse_form(b"just words without equals")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_read_or_refused_never_crash(body: bytes) -> None:
    try:
        form = parse_form(body)
        signed_by_twilio("token", "https://h.example/x", form, "sig")
        incident_from_sms(form, NOW)
    except MalformedSms:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=20), st.text(max_size=200)), max_size=20))
def test_arbitrary_forms_are_read_or_refused_never_crash(form: list[tuple[str, str]]) -> None:
    try:
        incident_from_sms(form, NOW)
    except MalformedSms:
        pass
