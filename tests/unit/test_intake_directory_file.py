"""The directory file: loaded at start-up, every mistake reported as file:line: where: what."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.incidents import ContactDetails
from services.intake.adapters.directory_file import DirectoryFileError, load_directory
from services.intake.domain import identify

EXAMPLE = Path(__file__).resolve().parents[2] / "services" / "intake" / "directory.example.yaml"


def write(tmp_path: Path, text: str, name: str = "directory.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(DirectoryFileError) as raised:
        load_directory(path, "GB")
    return raised.value.problems


def test_the_shipped_example_directory_loads_with_one_vip() -> None:
    directory = load_directory(EXAMPLE, "GB")
    assert len(directory) == 5
    vips = [uid for uid in (f"u-100{i}" for i in range(1, 6)) if directory.find("user_id", uid).vip]  # type: ignore[union-attr]
    assert vips == ["u-1001"]


def test_phone_numbers_in_the_directory_are_stored_in_e164() -> None:
    directory = load_directory(EXAMPLE, "GB")
    profile = identify(directory, ContactDetails(phone="+44 7700 900123"), "GB")
    assert (profile.customer_id, profile.phone) == ("u-1002", "+447700900123")


GOOD = """\
customers:
  - user_id: u-1
    name: Ada
    email: ada@example.com
    phone: "020 7946 0018"
  - user_id: u-2
    name: Grace
"""


def test_a_missing_field_is_reported_at_its_entry(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  - user_id: u-3\n    email: alan@example.com\n")
    assert problems(path) == [f"{path}:8: customers[2].name: Field required"]


def test_an_unreadable_phone_number_is_reported_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  - user_id: u-3\n    name: Alan\n    phone: call reception\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:10: customers[2].phone: 'call reception' is not a phone number")


def test_an_unquoted_phone_number_is_asked_to_be_quoted(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  - user_id: u-3\n    name: Alan\n    phone: +441614960742\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:10: customers[2].phone:")
    assert "quotes" in problem


def test_a_bad_email_and_an_unknown_field_are_both_reported(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  - user_id: u-3\n    name: Alan\n    email: alan.example.com\n    shoe_size: 9\n")
    found = problems(path)
    bad_email = f"{path}:10: customers[2].email: 'alan.example.com' is not an e-mail address (An email address must"
    assert any(problem.startswith(bad_email) for problem in found), found
    assert f"{path}:11: customers[2].shoe_size: Extra inputs are not permitted" in found


def test_a_duplicate_email_names_both_entries(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  - user_id: u-3\n    name: Ada again\n    email: ADA@example.com\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:8: customers[2]: email 'ada@example.com' is already used by customer 'u-1'")
    assert problem.endswith(f"(at {path}:2)")


def test_a_duplicate_phone_in_another_format_is_caught(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  - user_id: u-3\n    name: Ada again\n    phone: '+44 20-7946-0018'\n")
    [problem] = problems(path)
    assert "phone '+442079460018' is already used by customer 'u-1'" in problem


def test_every_bad_entry_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "customers:\n  - name: A\n  - user_id: u-2\n  - 42\n")
    assert problems(path) == [
        f"{path}:2: customers[0].user_id: Field required",
        f"{path}:3: customers[1].name: Field required",
        f"{path}:4: customers[2]: expected the fields of a customer (user_id, name, ...)",
    ]


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  - user_id: [u-3\n    name: Alan\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:9: not valid YAML/JSON")


def test_a_file_without_a_customers_list_is_refused(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "- user_id: u-1\n")) == [
        f"{tmp_path / 'directory.yaml'}:1: expected a mapping with a 'customers' list at the top"
    ]


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    [problem] = problems(tmp_path / "nowhere.yaml")
    assert problem == f"{tmp_path / 'nowhere.yaml'}: cannot read: No such file or directory"


def test_a_json_directory_works_and_its_errors_name_lines_too(tmp_path: Path) -> None:
    customers = [{"user_id": "u-1", "name": "Ada", "phone": "+44 20 7946 0018"}, {"user_id": "u-2"}]
    path = write(tmp_path, json.dumps({"customers": customers}, indent=2), "directory.json")
    assert problems(path) == [f"{path}:8: customers[1].name: Field required"]
    customers[1]["name"] = "Grace"
    path.write_text(json.dumps({"customers": customers}, indent=2), encoding="utf-8")
    assert len(load_directory(path, "GB")) == 2
