"""Identifying the customer: user id, then e-mail, then phone, then social handle; then enrichment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts.envelope import new_envelope
from contracts.incidents import ContactDetails, IncidentReported, IncidentReportedData
from services.intake.domain import (
    Customer,
    Directory,
    DuplicateCustomer,
    identified_event_id,
    identified_incident,
    identify,
)

ADA = Customer(
    user_id="u-1",
    name="Ada Lovelace",
    email="Ada.Lovelace@example.com",
    phone="+442079460018",
    social_handles=("@Ada_L", "@ada@mastodon.example"),
    location="London",
    department="Finance",
    vip=True,
    hardware=("ThinkPad X1",),
    software=("Windows 11", "SAP GUI"),
)
GRACE = Customer(user_id="u-2", name="Grace Hopper", email="grace@example.com", phone="+447700900123",
                 social_handles=("@amazing_grace",))
ALAN = Customer(user_id="u-3", name="Alan Turing", email="alan@example.com", phone="+441614960742")
DIRECTORY = Directory.of([ADA, GRACE, ALAN])


def who(**contact: str) -> tuple[str | None, str | None]:
    profile = identify(DIRECTORY, ContactDetails(**contact), "GB")
    return profile.customer_id, profile.identified_by


@pytest.mark.parametrize(
    ("contact", "expected"),
    [
        ({"user_id": "u-1"}, ("u-1", "user_id")),
        ({"email": "ada.lovelace@example.com"}, ("u-1", "email")),
        ({"email": "  ADA.LOVELACE@EXAMPLE.COM "}, ("u-1", "email")),
        ({"phone": "020 7946 0018"}, ("u-1", "phone")),
        ({"phone": "+44 (0)20-7946-0018"}, ("u-1", "phone")),
        ({"social_handle": "ada_l"}, ("u-1", "social_handle")),
        ({"social_handle": "@ADA_L"}, ("u-1", "social_handle")),
        ({"social_handle": "@ada@Mastodon.example"}, ("u-1", "social_handle")),
    ],
)
def test_each_way_of_identifying_finds_the_customer(contact: dict[str, str], expected: tuple[str, str]) -> None:
    assert who(**contact) == expected


@pytest.mark.parametrize(
    ("contact", "expected"),
    [
        # Each contact names two different customers: the earlier key in the order wins.
        ({"user_id": "u-2", "email": "ada.lovelace@example.com"}, ("u-2", "user_id")),
        ({"email": "grace@example.com", "phone": "020 7946 0018"}, ("u-2", "email")),
        ({"phone": "0161 496 0742", "social_handle": "@ada_l"}, ("u-3", "phone")),
        # An unknown earlier key does not stop the search.
        ({"user_id": "u-999", "email": "grace@example.com"}, ("u-2", "email")),
        ({"user_id": "u-999", "email": "nobody@example.com", "phone": "07700 900123"}, ("u-2", "phone")),
        ({"email": "nobody@example.com", "phone": "0800 000 000", "social_handle": "amazing_grace"},
         ("u-2", "social_handle")),
    ],
)
def test_identification_tries_user_id_then_email_then_phone_then_handle(
    contact: dict[str, str], expected: tuple[str, str]
) -> None:
    assert who(**contact) == expected


def test_user_ids_are_matched_exactly() -> None:
    assert who(user_id="U-1") == (None, None)


def test_an_identified_customer_is_enriched_from_the_directory() -> None:
    profile = identify(DIRECTORY, ContactDetails(email="ada.lovelace@example.com", name="A. L."), "GB")
    assert profile.identified
    assert (profile.name, profile.email, profile.phone) == ("Ada Lovelace", "Ada.Lovelace@example.com", "+442079460018")
    assert (profile.location, profile.department, profile.vip) == ("London", "Finance", True)
    assert profile.hardware == ["ThinkPad X1"]
    assert profile.software == ["Windows 11", "SAP GUI"]
    assert profile.social_handle == "@Ada_L"


def test_the_handle_that_matched_is_the_one_recorded() -> None:
    profile = identify(DIRECTORY, ContactDetails(social_handle="ada@mastodon.example"), "GB")
    assert profile.social_handle == "@ada@mastodon.example"


def test_what_the_directory_lacks_is_filled_from_the_contact() -> None:
    directory = Directory.of([Customer(user_id="u-9", name="No Contact Data")])
    profile = identify(directory, ContactDetails(user_id="u-9", email="x@example.com", phone="020 7946 0018"), "GB")
    assert (profile.email, profile.phone) == ("x@example.com", "+442079460018")


def test_an_unknown_customer_keeps_the_contact_data_with_the_phone_normalised() -> None:
    contact = ContactDetails(email=" Who@Example.com ", phone="(0117) 496-0999", social_handle="@who", name="Who")
    profile = identify(DIRECTORY, contact, "GB")
    assert not profile.identified
    assert profile.customer_id is None and profile.identified_by is None
    assert (profile.name, profile.email, profile.phone, profile.social_handle) == (
        "Who", "Who@example.com", "+441174960999", "@who"  # the domain in its normal form: lower case
    )
    assert profile.vip is False and profile.hardware == []


def test_an_unknown_customer_with_an_unreadable_phone_keeps_it_as_written() -> None:
    profile = identify(DIRECTORY, ContactDetails(phone="ask for Bob on ext 12"), "GB")
    assert not profile.identified
    assert profile.phone == "ask for Bob on ext 12"


@pytest.mark.parametrize(
    ("newcomer", "key"),
    [
        (Customer(user_id="u-1", name="Twin"), "user_id"),
        (Customer(user_id="u-8", name="Twin", email="GRACE@example.com"), "email"),
        (Customer(user_id="u-8", name="Twin", phone="+447700900123"), "phone"),
        (Customer(user_id="u-8", name="Twin", social_handles=("AMAZING_GRACE",)), "social_handle"),
    ],
)
def test_two_customers_cannot_share_a_key(newcomer: Customer, key: str) -> None:
    directory = Directory.of([ADA, GRACE])
    with pytest.raises(DuplicateCustomer) as raised:
        directory.add(newcomer)
    assert raised.value.key == key
    assert len(directory) == 2


def _reported() -> IncidentReported:
    data = IncidentReportedData(
        channel="email",
        channel_message_id="<m1@example.com>",
        received_at=datetime(2025, 1, 6, 9, 30, tzinfo=UTC),
        contact=ContactDetails(email="grace@example.com"),
        subject="VPN drops",
        components=["vpn"],
        impact="medium",
        urgency="high",
    )
    return new_envelope(IncidentReported, data, correlation_id="corr-1")  # type: ignore[return-value]


def test_the_identified_incident_carries_the_report_and_its_lineage() -> None:
    reported = _reported()
    profile = identify(DIRECTORY, reported.data.contact, "GB")
    identified = identified_incident(reported, profile, datetime(2025, 1, 6, 9, 31, tzinfo=UTC))
    assert identified.type == "incident.identified"
    assert identified.data.customer.customer_id == "u-2"
    assert identified.data.subject == "VPN drops" and identified.data.components == ["vpn"]
    assert identified.data.received_at == reported.data.received_at
    assert identified.correlation_id == "corr-1"
    assert identified.causation_id == str(reported.event_id)
    assert identified.ticket_id is None


def test_the_same_report_always_yields_the_same_identified_event_id() -> None:
    reported = _reported()
    again = reported.model_copy()
    other = _reported()
    assert identified_event_id(reported) == identified_event_id(again)
    assert identified_event_id(reported) != identified_event_id(other)
    assert isinstance(identified_event_id(reported), uuid.UUID)


def test_an_unverified_contact_is_never_identified_and_its_user_id_is_only_a_claim() -> None:
    claim = ContactDetails(user_id="u-1", email="ada.lovelace@example.com", name="Ada?")
    profile = identify(DIRECTORY, claim, "GB", verified=False)
    assert (profile.identified, profile.verified, profile.customer_id) == (False, False, None)
    assert (profile.claimed_user_id, profile.email, profile.name) == ("u-1", "ada.lovelace@example.com", "Ada?")
    assert (profile.vip, profile.department, profile.hardware) == (False, None, [])  # nothing of the directory's


def test_the_directorys_language_wins_over_the_channels_and_the_channels_fills_the_gap() -> None:
    german = Customer(user_id="u-9", name="Lise Meitner", email="lise@example.com", language="de")
    directory = Directory.of([german, ALAN])
    assert identify(directory, ContactDetails(email="lise@example.com"), "GB", language="en").language == "de"
    assert identify(directory, ContactDetails(email="alan@example.com"), "GB", language="fr").language == "fr"
    assert identify(directory, ContactDetails(email="who@example.com"), "GB", language="nl").language == "nl"
    assert identify(directory, ContactDetails(user_id="u-9"), "GB", verified=False, language="it").language == "it"
