"""The SLA policies file: the shipped one is valid; mistakes stop start-up naming file, line and problem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.escalation.config import SHIPPED_POLICIES
from services.escalation.policies_file import (
    PoliciesFileError,
    load_policies,
    parse_duration,
    parse_openings,
)
from services.escalation.sla import TicketFacts

GOOD = """\
default_calendar: office
calendars:
  office:
    time_zone: Europe/Berlin
    hours:
      monday: "09:00-12:00, 13:00-17:00"
    holidays: [2025-12-25]
policies:
  - name: acme
    match: {customer: C-1, priority: 2}
    first_response: 10m
  - name: p1
    match: {priority: 1}
    first_response: 15m
  - name: rest
    first_response: 4h
    next_update: 1d
    resolution: 3d
    warn_at_percent: [90, 50]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sla.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problem(tmp_path: Path, text: str) -> str:
    with pytest.raises(PoliciesFileError) as caught:
        load_policies(write(tmp_path, text))
    return caught.value.message


def test_the_shipped_file_holds_a_policy_for_every_priority() -> None:
    policies = load_policies(SHIPPED_POLICIES)
    for priority in range(1, 6):
        assert policies.for_ticket(TicketFacts(priority=priority)).match.priorities
    assert policies.for_ticket(TicketFacts(priority=1)).calendar.always_open
    assert policies.for_ticket(TicketFacts(priority=2, vip=True)).name == "vip-fast-lane"


def test_the_first_matching_policy_applies(tmp_path: Path) -> None:
    policies = load_policies(write(tmp_path, GOOD))
    assert policies.for_ticket(TicketFacts(priority=2, customer_id="C-1")).name == "acme"
    assert policies.for_ticket(TicketFacts(priority=2, customer_id="C-2")).name == "rest"
    rest = policies.named("rest")
    assert rest is not None and rest.warn_at_percent == (50, 90)
    assert rest.targets.resolution == timedelta(days=3)


def test_a_priority_1_policy_without_a_calendar_runs_24x7_and_others_use_the_default(tmp_path: Path) -> None:
    policies = load_policies(write(tmp_path, GOOD))
    assert policies.for_ticket(TicketFacts(priority=1)).calendar.always_open
    office = policies.for_ticket(TicketFacts(priority=3)).calendar
    monday_lunch = datetime(2025, 3, 10, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
    assert office.add(monday_lunch, 3600) == datetime(2025, 3, 10, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        (GOOD.replace("Europe/Berlin", "Mars/Olympus"), 4, "unknown time zone 'Mars/Olympus'"),
        (GOOD.replace("monday:", "mondai:"), 5, "'mondai' is not a weekday"),
        (GOOD.replace("09:00-12:00", "12:00-09:00"), 5, "must end after it starts"),
        (GOOD.replace("first_response: 10m", "first_response: soon"), 11, "'soon' is not a duration"),
        (GOOD.replace("[90, 50]", "[100]"), 19, "100% is not a warning point"),
        (GOOD.replace("  - name: rest\n", "  - name: rest\n    calendar: moon\n"), 16, "unknown calendar 'moon'"),
        (GOOD.replace("match: {priority: 1}", "match: {priority: 7}"), 13, "priority 7 is not 1-5"),
        (GOOD.replace("    first_response: 4h\n", "    first_response: 4h\n    colour: red\n"), 17, "colour"),
        (GOOD.replace("name: acme", "name: p1"), 12, "policy name 'p1' is used twice"),
        (GOOD.replace("default_calendar: office", "default_calendar: moon"), 1, "unknown calendar 'moon'"),
        ("default_calendar: office\npolicies: [\n", 3, "not valid YAML"),
    ],
)
def test_a_wrong_file_names_the_line_and_the_problem(tmp_path: Path, text: str, line: int, says: str) -> None:
    message = problem(tmp_path, text)
    assert f"sla.yaml:{line}:" in message, message
    assert says in message, message


def test_a_priority_without_a_plain_policy_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace("  - name: rest\n    first_response: 4h", "  - name: rest\n    match: {priority: [2, 3]}\n"
                                                                  "    first_response: 4h")
    assert "no policy matches on priority alone for priority 4, 5" in problem(tmp_path, text)


def test_a_missing_file_is_named() -> None:
    with pytest.raises(PoliciesFileError, match="nowhere.yaml"):
        load_policies(Path("/nowhere.yaml"))


@pytest.mark.parametrize(("text", "expected"), [
    ("15m", timedelta(minutes=15)), ("4h", timedelta(hours=4)), ("1d 2h", timedelta(days=1, hours=2)),
    ("30s", timedelta(seconds=30)), (90, timedelta(seconds=90)), (2.5, timedelta(seconds=2.5)),
])
def test_durations_read_as_a_person_writes_them(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_openings_read_in_minutes_and_may_end_at_midnight() -> None:
    assert parse_openings("00:00-02:00, 22:00-24:00") == ((0, 120), (1320, 1440))


def test_the_criteria_besides_time_are_read_and_checked(tmp_path: Path) -> None:
    policies = load_policies(write(tmp_path, GOOD + "escalate_at_once_when: {customer_replies_unanswered: 3}\n"))
    assert (policies.criteria.customer_replies_unanswered, policies.criteria.reopened) == (3, None)
    assert load_policies(SHIPPED_POLICIES).criteria.reopened == 2
    message = problem(tmp_path, GOOD + "escalate_at_once_when: {reopened: 0}\n")
    assert "sla.yaml:20: escalate_at_once_when.reopened" in message
