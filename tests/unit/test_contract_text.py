"""What every channel and integration puts in a subject, a name, an address or a language: checked in the contract."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts.incidents import (
    ContactDetails,
    CustomerProfile,
    DirectoryCustomerUpdatedData,
    IncidentReported,
    IncidentReportedData,
)
from contracts.registry import parse_message

NOW = datetime(2026, 3, 14, 9, 26, tzinfo=UTC)
INJECTION = "Hello\r\nReply-To: eve@example.net\r\n\r\nPay to IBAN X"


def reported(**fields: object) -> IncidentReportedData:
    return IncidentReportedData.model_validate(
        {"channel": "web", "channel_message_id": "m-1", "received_at": NOW, "subject": "VPN", **fields}
    )


@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r", "\t", "\x00", "\x1b", "\x85", "\u2028", "\u2029", "\x7f"])
def test_a_subject_never_carries_a_line_break_or_a_control_character(breaker: str) -> None:
    assert reported(subject=f"Printer{breaker}Bcc: all@example.com").subject == "Printer Bcc: all@example.com"


def test_an_integration_publishing_onto_the_topic_cannot_put_a_header_break_in_a_subject_or_name() -> None:
    message = reported(subject=INJECTION, contact={"name": "Eve\r\nBcc: all@example.com"})
    raw = IncidentReported(event_id="4f9e3c49-0d5f-4d38-a6f8-7b1d2e3c4a5b", type="incident.reported", schema_version=1,
                           occurred_at=NOW, correlation_id="c", data=message).model_dump_json()  # fmt: skip
    parsed = parse_message(raw.replace("Hello ", "Hello\\r\\n"), (IncidentReported,))
    assert parsed.data.subject == "Hello Reply-To: eve@example.net Pay to IBAN X"
    assert parsed.data.contact.name == "Eve Bcc: all@example.com"


def test_a_subject_of_nothing_but_breaks_is_refused() -> None:
    with pytest.raises(ValidationError, match="subject"):
        reported(subject="\r\n\t")


@pytest.mark.parametrize("address", ["eve@example.net\r\nBcc: all@example.com", "garbage", "a@b@c.com", "x@localhost"])
def test_an_address_that_is_none_is_refused_in_a_contact_and_a_directory_entry(address: str) -> None:
    with pytest.raises(ValidationError, match="is not an e-mail address"):
        ContactDetails(email=address)
    with pytest.raises(ValidationError, match="is not an e-mail address"):
        DirectoryCustomerUpdatedData(user_id="u-1", name="Ada", email=address)


def test_an_address_is_kept_in_its_normal_form_and_a_blank_one_is_none() -> None:
    assert ContactDetails(email=" Ada.Lovelace@EXAMPLE.com ").email == "Ada.Lovelace@example.com"
    assert ContactDetails(email="  ").email is None


def test_a_stored_profile_with_an_unusable_address_reads_as_having_none_so_old_tickets_stay_readable() -> None:
    profile = CustomerProfile.model_validate_json('{"identified": false, "email": "eve@x.net\\r\\nBcc: a@b.com"}')
    assert profile.email is None and profile.verified is True


@pytest.mark.parametrize(
    ("given", "kept"), [("DE", "de"), ("de-ch", "de-CH"), ("zh-hant-tw", "zh-Hant-TW"), ("es-419", "es-419"), ("", None)]
)
def test_a_language_is_a_bcp47_tag_in_its_conventional_case(given: str, kept: str | None) -> None:
    assert reported(language=given).language == kept
    assert DirectoryCustomerUpdatedData(user_id="u-1", name="Ada", language=given).language == kept


@pytest.mark.parametrize("given", ["de_DE", "german language", "d", "123", "en--GB", "x" * 40])
def test_a_language_that_is_no_bcp47_tag_is_refused_and_says_so(given: str) -> None:
    with pytest.raises(ValidationError, match="is not a BCP 47 language tag"):
        reported(language=given)


def test_an_unverified_contact_cannot_be_an_identified_customer() -> None:
    with pytest.raises(ValidationError, match="unverified"):
        CustomerProfile(identified=True, customer_id="u-1", verified=False)
