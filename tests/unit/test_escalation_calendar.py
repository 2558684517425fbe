"""Business-hours arithmetic: weekends, holidays, time zones, daylight-saving changes and pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from services.escalation.calendar import (
    TWENTY_FOUR_SEVEN,
    BusinessCalendar,
    CalendarNeverOpen,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NINE_TO_FIVE = {d: ((9 * 60, 17 * 60),) for d in range(5)}  # Monday..Friday
H = 3600.0

# 2025-03-07 is a Friday; 2025-03-10 a Monday. Europe: DST starts 2025-03-30 02:00, ends 2025-10-26 03:00.
BERLIN_OFFICE = BusinessCalendar("berlin", BERLIN, NINE_TO_FIVE, frozenset({date(2025, 12, 25), date(2025, 12, 26)}))
NY_OFFICE = BusinessCalendar("new-york", NEW_YORK, NINE_TO_FIVE)
SPLIT_DAY = BusinessCalendar("split", BERLIN, {0: ((8 * 60, 12 * 60), (13 * 60, 17 * 60))})
NIGHT_DESK = BusinessCalendar("night", BERLIN, {d: ((0, 120), (22 * 60, 24 * 60)) for d in range(7)})
EARLY_SHIFT = BusinessCalendar("early", BERLIN, {d: ((0, 6 * 60),) for d in range(7)})


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


ADD_CASES = [
    # (calendar, start, business seconds, expected, why)
    (BERLIN_OFFICE, berlin(2025, 3, 10, 10), 2 * H, berlin(2025, 3, 10, 12), "inside one working day"),
    (BERLIN_OFFICE, berlin(2025, 3, 10, 16), 2 * H, berlin(2025, 3, 11, 10), "over a night"),
    (BERLIN_OFFICE, berlin(2025, 3, 7, 16), 2 * H, berlin(2025, 3, 10, 10), "over a weekend"),
    (BERLIN_OFFICE, berlin(2025, 3, 8, 12), 1 * H, berlin(2025, 3, 10, 10), "opened on a Saturday"),
    (BERLIN_OFFICE, berlin(2025, 3, 10, 6), 1 * H, berlin(2025, 3, 10, 10), "opened before opening time"),
    (BERLIN_OFFICE, berlin(2025, 3, 10, 17), 1 * H, berlin(2025, 3, 11, 10), "opened at closing time"),
    (BERLIN_OFFICE, berlin(2025, 12, 24, 16), 2 * H, berlin(2025, 12, 29, 10), "over Christmas and a weekend"),
    (BERLIN_OFFICE, berlin(2025, 3, 10, 10), 0.0, berlin(2025, 3, 10, 10), "no time at all"),
    (BERLIN_OFFICE, berlin(2025, 3, 10, 10), 40 * H, berlin(2025, 3, 17, 10), "a full working week"),
    (BERLIN_OFFICE, berlin(2025, 3, 28, 16), 2 * H, berlin(2025, 3, 31, 10), "over the spring DST weekend"),
    (BERLIN_OFFICE, berlin(2025, 10, 24, 16), 2 * H, berlin(2025, 10, 27, 10), "over the autumn DST weekend"),
    (NY_OFFICE, datetime(2025, 3, 10, 20, 0, tzinfo=UTC), 1 * H, datetime(2025, 3, 10, 21, 0, tzinfo=UTC),
     "New York's 17:00 is 21:00 UTC after US DST began"),
    (NY_OFFICE, datetime(2025, 3, 7, 21, 30, tzinfo=UTC), 1 * H, datetime(2025, 3, 10, 13, 30, tzinfo=UTC),
     "a Friday evening in UTC is still Friday afternoon in New York, and Monday is daylight time"),
    (SPLIT_DAY, berlin(2025, 3, 10, 11), 2 * H, berlin(2025, 3, 10, 14), "over a lunch break"),
    (NIGHT_DESK, berlin(2025, 3, 10, 23), 2 * H, berlin(2025, 3, 11, 1), "an opening across midnight"),
    (NIGHT_DESK, berlin(2025, 3, 30, 1), 2 * H, berlin(2025, 3, 30, 23), "the night the clocks go forward"),
    (TWENTY_FOUR_SEVEN, berlin(2025, 3, 8, 12), 30 * H, berlin(2025, 3, 9, 18), "24x7 counts weekends"),
]


@pytest.mark.parametrize(("calendar", "start", "seconds", "expected", "why"), ADD_CASES, ids=[c[4] for c in ADD_CASES])
def test_adding_business_time(calendar: BusinessCalendar, start: datetime, seconds: float, expected: datetime,
                              why: str) -> None:
    assert calendar.add(start, seconds) == expected


BETWEEN_CASES = [
    (BERLIN_OFFICE, berlin(2025, 3, 10, 10), berlin(2025, 3, 10, 12), 2 * H, "inside a day"),
    (BERLIN_OFFICE, berlin(2025, 3, 7, 16), berlin(2025, 3, 10, 10), 2 * H, "over a weekend"),
    (BERLIN_OFFICE, berlin(2025, 12, 24, 16), berlin(2025, 12, 29, 10), 2 * H, "over holidays"),
    (BERLIN_OFFICE, berlin(2025, 3, 8, 0), berlin(2025, 3, 9, 23), 0.0, "a weekend holds no business time"),
    (BERLIN_OFFICE, berlin(2025, 3, 10, 12), berlin(2025, 3, 10, 10), 0.0, "end before start"),
    (EARLY_SHIFT, berlin(2025, 3, 30, 0), berlin(2025, 3, 30, 12), 5 * H, "a shift shortened by DST"),
    (EARLY_SHIFT, berlin(2025, 10, 26, 0), berlin(2025, 10, 26, 12), 7 * H, "a shift lengthened by DST"),
]


@pytest.mark.parametrize(("calendar", "start", "end", "expected", "why"), BETWEEN_CASES, ids=[c[4] for c in BETWEEN_CASES])
def test_business_time_between_two_moments(calendar: BusinessCalendar, start: datetime, end: datetime,
                                           expected: float, why: str) -> None:
    assert calendar.between(start, end) == expected


PAUSE_CASES = [
    # (opened, target h, paused at, resumed at, expected due, why): the remaining time is carried over the pause
    (berlin(2025, 3, 10, 9), 4 * H, berlin(2025, 3, 10, 11), berlin(2025, 3, 11, 15), berlin(2025, 3, 11, 17),
     "a pause over a night"),
    (berlin(2025, 3, 7, 15), 4 * H, berlin(2025, 3, 7, 16), berlin(2025, 3, 8, 10), berlin(2025, 3, 10, 12),
     "resumed on a Saturday, the clock waits for Monday"),
    (berlin(2025, 12, 23, 15), 8 * H, berlin(2025, 12, 23, 16), berlin(2025, 12, 26, 9), berlin(2025, 12, 29, 16),
     "a pause spanning Christmas"),
    (berlin(2025, 3, 10, 9), 4 * H, berlin(2025, 3, 10, 9), berlin(2025, 3, 10, 9), berlin(2025, 3, 10, 13),
     "a pause of no length"),
]


@pytest.mark.parametrize(("opened", "target", "paused", "resumed", "expected", "why"), PAUSE_CASES,
                         ids=[c[5] for c in PAUSE_CASES])
def test_a_pause_carries_the_remaining_business_time(opened: datetime, target: float, paused: datetime,
                                                     resumed: datetime, expected: datetime, why: str) -> None:
    due = BERLIN_OFFICE.add(opened, target)
    remaining = BERLIN_OFFICE.between(paused, due)
    assert BERLIN_OFFICE.add(resumed, remaining) == expected


def test_adding_then_measuring_gives_back_the_same_business_time() -> None:
    start = berlin(2025, 3, 27, 13, 17)
    for hours in (0.5, 3, 8, 17, 41, 100):
        assert BERLIN_OFFICE.between(start, BERLIN_OFFICE.add(start, hours * H)) == pytest.approx(hours * H)


def test_is_open_follows_the_local_hours() -> None:
    assert BERLIN_OFFICE.is_open(berlin(2025, 3, 10, 9))
    assert not BERLIN_OFFICE.is_open(berlin(2025, 3, 10, 17))
    assert not BERLIN_OFFICE.is_open(berlin(2025, 12, 25, 10))
    assert TWENTY_FOUR_SEVEN.is_open(berlin(2025, 12, 25, 3))


def test_a_calendar_that_never_opens_is_refused() -> None:
    with pytest.raises(CalendarNeverOpen):
        BusinessCalendar("closed", BERLIN, {}).add(berlin(2025, 3, 10, 9), H)
