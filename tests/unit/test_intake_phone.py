"""Phone numbers as customers and channels write them, normalised to E.164 for matching."""

from __future__ import annotations

import pytest

from services.intake.domain import normalise_phone

LONDON = "+442079460018"


@pytest.mark.parametrize(
    "written",
    [
        "+44 20 7946 0018",
        "+442079460018",
        "020 7946 0018",
        "02079460018",
        "(020) 7946 0018",
        "(020) 7946-0018",
        "020-7946-0018",
        "020/7946/0018",
        "020.7946.0018",
        "+44 (0)20 7946 0018",
        "+44 (0) 20-7946-0018",
        "0044 20 7946 0018",
        "44 20 7946 0018",
        "tel:+44-20-7946-0018",
        "  +44 20 7946 0018  ",
        "+44 20 7946 0018 ext. 12",
    ],
)
def test_a_london_number_in_any_format_is_one_e164_number(written: str) -> None:
    assert normalise_phone(written, "GB") == LONDON


@pytest.mark.parametrize(
    ("written", "region", "e164"),
    [
        ("07700 900123", "GB", "+447700900123"),
        ("+1 (202) 555-0147", "GB", "+12025550147"),
        ("(202) 555-0147", "US", "+12025550147"),
        ("202-555-0147", "US", "+12025550147"),
        ("1-202-555-0147", "US", "+12025550147"),
        ("030 901820", "DE", "+4930901820"),
        ("+49 30 901820", "GB", "+4930901820"),
    ],
)
def test_national_formats_are_read_in_the_default_region(written: str, region: str, e164: str) -> None:
    assert normalise_phone(written, region) == e164


def test_the_same_national_number_means_different_numbers_in_different_regions() -> None:
    assert normalise_phone("020 7946 0018", "GB") != normalise_phone("020 7946 0018", "NL")


@pytest.mark.parametrize("written", [None, "", "   ", "hello", "12", "call me", "+44", "++44 20"])
def test_what_is_not_a_phone_number_normalises_to_none(written: str | None) -> None:
    assert normalise_phone(written, "GB") is None
