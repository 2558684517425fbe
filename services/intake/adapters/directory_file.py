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

from pydantic import BaseModel, ConfigDict, ValidationError

from runtime.config_files import ConfigFileError, MarkedDocument, read
from services.intake.customer_entry import CustomerEntry
from services.intake.domain import Customer, Directory, DuplicateCustomer


class DirectoryFileError(ConfigFileError):
    """The directory file cannot be used; the message names file, line and problem."""


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
            customer = _customer(CustomerEntry.model_validate(raw), region, document, where)
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


def _customer(entry: CustomerEntry, region: str, document: MarkedDocument, where: tuple[int | str, ...]) -> Customer:
    try:
        return entry.customer(region)
    except ValueError as exc:
        raise DirectoryFileError([document.problem((*where, "phone"), f"customers[{where[1]}].{exc}")]) from None
