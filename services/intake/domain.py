"""Identifying the customer behind an incident, and filling in what is known of them.

Pure: no I/O. The directory lives in intake's database
(``adapters/directory_store.py``); for each batch of incidents the customers
their contacts could be are read into a :class:`Directory` and matched here.

A contact may carry several ways to identify the customer; they are tried in
a fixed order, most reliable first: user id, e-mail address, phone number,
social handle. The first that matches a directory entry wins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, cast

import phonenumbers

from contracts.envelope import new_envelope
from contracts.incidents import (
    ContactDetails,
    CustomerProfile,
    IncidentIdentified,
    IncidentIdentifiedData,
    IncidentReported,
)

IdentifiedBy = Literal["user_id", "email", "phone", "social_handle"]

# Ids of what intake publishes are derived from their cause with this namespace,
# so a redelivered cause republishes the same id and downstream deduplicates it.
INTAKE_NAMESPACE = uuid.UUID("5f0c6a52-9a4e-4d5c-8a3b-2f7f4c1e9b10")


# --- normalising what customers type -------------------------------------------


def normalise_phone(raw: str | None, region: str) -> str | None:
    """The number in E.164 (``+442079460018``), or None if it cannot be read as one.

    Spaces, dashes, slashes, brackets, ``tel:`` and national formats
    (``020 7946 0018`` read in ``region``) are all accepted. Only the length
    is checked, not whether the range is allocated: a test or new number
    should still match its directory entry.
    """
    if not raw or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str | None) -> str | None:
    """Addresses compare case-insensitively (as every mail system in practice treats them)."""
    return (raw.strip().casefold() or None) if raw else None


def normalise_handle(raw: str | None) -> str | None:
    """``@Ada_L`` and ``ada_l`` are the same handle."""
    return (raw.strip().lstrip("@").casefold() or None) if raw else None


# --- the directory -------------------------------------------------------------


@dataclass(frozen=True)
class Customer:
    """One entry of the customer directory, its contact data already normalised."""

    user_id: str
    name: str
    email: str | None = None
    phone: str | None = None  # E.164
    social_handles: tuple[str, ...] = ()  # as written in the directory
    location: str | None = None
    department: str | None = None
    vip: bool = False
    hardware: tuple[str, ...] = ()
    software: tuple[str, ...] = ()
    language: str | None = None  # BCP 47


class DuplicateCustomer(ValueError):
    """Two directory entries claim the same user id, e-mail, phone or handle."""

    def __init__(self, key: IdentifiedBy, value: str, first: Customer) -> None:
        super().__init__(f"{key} {value!r} is already used by customer {first.user_id!r}")
        self.key = key
        self.value = value
        self.first = first


@dataclass
class Directory:
    """Known customers, indexed by every way a contact can identify them."""

    _by: dict[IdentifiedBy, dict[str, Customer]] = field(
        default_factory=lambda: {"user_id": {}, "email": {}, "phone": {}, "social_handle": {}}
    )

    @classmethod
    def of(cls, customers: Iterable[Customer]) -> Directory:
        directory = cls()
        for customer in customers:
            directory.add(customer)
        return directory

    def add(self, customer: Customer) -> None:
        """Index ``customer``; raise :class:`DuplicateCustomer` if a key is taken (nothing is indexed then)."""
        keys = self._keys(customer)
        for how, value in keys:
            if (first := self._by[how].get(value)) is not None:
                raise DuplicateCustomer(how, value, first)
        for how, value in keys:
            self._by[how][value] = customer

    def find(self, how: IdentifiedBy, normalised: str) -> Customer | None:
        return self._by[how].get(normalised)

    def __len__(self) -> int:
        return len(self._by["user_id"])

    def customers(self) -> list[Customer]:
        return list(self._by["user_id"].values())

    @staticmethod
    def _keys(customer: Customer) -> list[tuple[IdentifiedBy, str]]:
        keys: list[tuple[IdentifiedBy, str]] = [("user_id", customer.user_id)]
        if email := normalise_email(customer.email):
            keys.append(("email", email))
        if customer.phone:
            keys.append(("phone", customer.phone))
        handles = dict.fromkeys(filter(None, map(normalise_handle, customer.social_handles)))  # one key per handle
        keys.extend(("social_handle", handle) for handle in handles)
        return keys


# --- identify and enrich ---------------------------------------------------------


def identify(
    directory: Directory, contact: ContactDetails, region: str, *, verified: bool = True, language: str | None = None
) -> CustomerProfile:
    """Everything known of the customer behind ``contact``.

    An unknown customer is still described by what the channel gave us (the
    phone number normalised when it can be), so the agent can reach them.
    A contact the channel could not verify (``verified=False``: the chat
    widget, a mail without a DMARC pass) is never identified: what it says is
    kept as unverified contact data, its user id as a claim for the agent.
    ``language`` is the channel's; the directory's, when it has one, wins.
    """
    phone = normalise_phone(contact.phone, region)
    if not verified:
        return _unidentified(contact, phone, language, verified=False)
    handle = normalise_handle(contact.social_handle)
    tries: tuple[tuple[IdentifiedBy, str | None], ...] = (
        ("user_id", contact.user_id.strip() if contact.user_id else None),
        ("email", normalise_email(contact.email)),
        ("phone", phone),
        ("social_handle", handle),
    )
    for how, key in tries:
        if key and (customer := directory.find(how, key)) is not None:
            return _profile(customer, how, contact, phone, handle, language)
    return _unidentified(contact, phone, language, verified=True)


def _unidentified(
    contact: ContactDetails, phone: str | None, language: str | None, *, verified: bool
) -> CustomerProfile:
    return CustomerProfile(
        identified=False,
        verified=verified,
        claimed_user_id=None if verified else _clean(contact.user_id),
        name=_clean(contact.name),
        email=_clean(contact.email),
        phone=phone or _clean(contact.phone),
        social_handle=_clean(contact.social_handle),
        language=language,
    )


def _profile(
    customer: Customer,
    how: IdentifiedBy,
    contact: ContactDetails,
    phone: str | None,
    handle: str | None,
    language: str | None,
) -> CustomerProfile:
    # The directory is the authority; what the contact gave fills only its gaps.
    matched_handle = next((h for h in customer.social_handles if normalise_handle(h) == handle), None)
    return CustomerProfile(
        identified=True,
        identified_by=how,
        customer_id=customer.user_id,
        name=customer.name,
        email=customer.email or _clean(contact.email),
        phone=customer.phone or phone or _clean(contact.phone),
        social_handle=matched_handle or next(iter(customer.social_handles), None) or _clean(contact.social_handle),
        location=customer.location,
        department=customer.department,
        vip=customer.vip,
        language=customer.language or language,
        hardware=list(customer.hardware),
        software=list(customer.software),
    )


def _clean(value: str | None) -> str | None:
    return (value.strip() or None) if value else None


def identified_event_id(reported: IncidentReported) -> uuid.UUID:
    """The same reported incident always yields the same identified event id."""
    return uuid.uuid5(INTAKE_NAMESPACE, f"identified:{reported.event_id}")


def reported_event_id(channel: str, channel_message_id: str) -> uuid.UUID:
    """One channel message is one reported incident, however often it is posted."""
    return uuid.uuid5(INTAKE_NAMESPACE, f"reported:{channel}:{channel_message_id}")


def identified_incident(reported: IncidentReported, profile: CustomerProfile, now: datetime) -> IncidentIdentified:
    """The reported incident with the customer filled in; caused by (and correlated with) the report."""
    # Both parts are validated models already: construct, do not dump and validate them again (the hot path).
    data = IncidentIdentifiedData.model_construct(**dict(reported.data), customer=profile)
    message = new_envelope(
        IncidentIdentified, data, causation=reported, event_id=identified_event_id(reported), occurred_at=now
    )
    return cast(IncidentIdentified, message)
