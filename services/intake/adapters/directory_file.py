"""The customer directory file (YAML or JSON), loaded and validated at start-up.

Format (see docs/intake.md)::

    customers:
      - user_id: u-1001
        name: Ada Lovelace
        email: ada.lovelace@example.com
        phone: "+44 20 7946 0018"
        social_handles: ["@ada_l"]
        location: London, 3rd floor
        department: Finance
        vip: true
        hardware: [ThinkPad X1 Carbon Gen 11]
        software: [Windows 11, SAP GUI 8.0]

Every problem is reported at once, each as ``file:line: where: what``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runtime.config_files import ConfigFileError, MarkedDocument, read
from services.intake.domain import Customer, Directory, DuplicateCustomer, normalise_phone


class DirectoryFileError(ConfigFileError):
    """The directory file cannot be used; the message names file, line and problem."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    user_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)
    social_handles: list[str] = Field(default_factory=list)
    location: str | None = None
    department: str | None = None
    vip: bool = False
    hardware: list[str] = Field(default_factory=list)
    software: list[str] = Field(default_factory=list)

    @field_validator("phone", mode="before")
    @classmethod
    def _phone_is_text(cls, value: object) -> object:
        if isinstance(value, int):
            # YAML reads +442079460018 as a number; the leading + or 0 would be lost.
            raise ValueError('write the phone number in quotes, e.g. "+44 20 7946 0018"')
        return value

    @field_validator("email")
    @classmethod
    def _looks_like_email(cls, value: str | None) -> str | None:
        if value is not None:
            local, at, domain = value.partition("@")
            if not (local and at and "." in domain and " " not in value):
                raise ValueError(f"{value!r} is not an e-mail address")
        return value


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customers: list[Any]


def load_directory(path: Path, region: str) -> Directory:
    """The directory in ``path``; phone numbers in national format are read in ``region``."""
    try:
        document = read(path)
    except ConfigFileError as exc:
        raise DirectoryFileError(exc.problems) from None
    if not isinstance(document.data, dict):
        raise DirectoryFileError([document.problem((), "expected a mapping with a 'customers' list at the top")])
    try:
        entries = _File.model_validate(document.data).customers
    except ValidationError as exc:
        raise DirectoryFileError(document.validation_problems(exc)) from None
    problems: list[str] = []
    directory = Directory()
    lines: dict[str, int] = {}
    for index, raw in enumerate(entries):
        where = ("customers", index)
        if not isinstance(raw, dict):
            expected = "expected the fields of a customer (user_id, name, ...)"
            problems.append(document.problem(where, f"customers[{index}]: {expected}"))
            continue
        try:
            customer = _customer(_Entry.model_validate(raw), region, document, where)
            directory.add(customer)
            lines[customer.user_id] = document.line_of(where)
        except ValidationError as exc:
            problems.extend(document.validation_problems(exc, where))
        except DirectoryFileError as exc:
            problems.extend(exc.problems)
        except DuplicateCustomer as exc:
            first = f"{path}:{lines[exc.first.user_id]}"
            problems.append(document.problem(where, f"customers[{index}]: {exc} (at {first})"))
    if problems:
        raise DirectoryFileError(problems)
    return directory


def _customer(entry: _Entry, region: str, document: MarkedDocument, where: tuple[int | str, ...]) -> Customer:
    phone = normalise_phone(entry.phone, region)
    if entry.phone and phone is None:
        problem = f"customers[{where[1]}].phone: {entry.phone!r} is not a phone number (region {region})"
        raise DirectoryFileError([document.problem((*where, "phone"), problem)])
    return Customer(
        user_id=entry.user_id,
        name=entry.name,
        email=entry.email,
        phone=phone,
        social_handles=tuple(entry.social_handles),
        location=entry.location,
        department=entry.department,
        vip=entry.vip,
        hardware=tuple(entry.hardware),
        software=tuple(entry.software),
    )
