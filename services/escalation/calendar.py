"""Business-hours calendars: how much working time lies between two moments.

A target such as "first response within 4 business hours" is counted only
while the support desk is open: on the calendar's weekdays, inside its
opening hours, in its own time zone, and never on its holidays. Both
functions are pure arithmetic over aware datetimes, so tests can pin any
moment (weekends, holidays, daylight-saving changes) without a clock.

Opening hours are wall-clock times in the calendar's zone; an opening that a
daylight-saving change shortens or lengthens counts the real seconds that
pass (a 09:00-17:00 day on which clocks go forward inside it is still 8
hours, one that contains the change at 02:00 is unaffected).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_MINUTES = 24 * 60
_LONGEST_SEARCH_DAYS = 3 * 366
"""How far ahead ``add`` looks for opening hours before it gives up (a calendar closed for years is a mistake)."""

OpeningHours = tuple[tuple[int, int], ...]
"""One weekday's openings, as (from, to) minutes after local midnight; ``to`` may be 1440 (midnight)."""


class CalendarNeverOpen(ValueError):
    """A target cannot be met: the calendar has no opening hours within years."""


@dataclass(frozen=True)
class BusinessCalendar:
    name: str
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    hours: Mapping[int, OpeningHours] = field(default_factory=dict)  # weekday (0 = Monday) -> openings
    holidays: frozenset[date] = frozenset()
    always_open: bool = False  # 24x7: every second counts, holidays included

    def add(self, start: datetime, seconds: float) -> datetime:
        """The moment ``seconds`` of business time after ``start``."""
        if self.always_open:
            return start + timedelta(seconds=seconds)
        left = max(0.0, seconds)
        for opens, closes in self._openings_from(start):
            begin = max(opens, start)
            span = (closes - begin).total_seconds()
            if span <= 0:
                continue
            if left <= span:
                return begin + timedelta(seconds=left)
            left -= span
        raise CalendarNeverOpen(f"calendar {self.name!r} has no opening hours within {_LONGEST_SEARCH_DAYS} days")

    def between(self, start: datetime, end: datetime) -> float:
        """Business seconds from ``start`` to ``end`` (0 when ``end`` is not after ``start``)."""
        if end <= start:
            return 0.0
        if self.always_open:
            return (end - start).total_seconds()
        total = 0.0
        for opens, closes in self._openings_from(start):
            if opens >= end:
                break
            total += max(0.0, (min(closes, end) - max(opens, start)).total_seconds())
        return total

    def is_open(self, at: datetime) -> bool:
        if self.always_open:
            return True
        return any(opens <= at < closes for opens, closes in self._openings_on(at.astimezone(self.zone).date()))

    def _openings_from(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Every opening (as UTC instants) from the local day of ``start`` on, in order."""
        day = start.astimezone(self.zone).date()
        for offset in range(_LONGEST_SEARCH_DAYS):
            yield from self._openings_on(day + timedelta(days=offset))

    def _openings_on(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        if day in self.holidays:
            return
        midnight = datetime.combine(day, time(0), self.zone)
        for from_min, to_min in self.hours.get(day.weekday(), ()):
            yield self._instant(midnight, from_min), self._instant(midnight, to_min)

    @staticmethod
    def _instant(midnight: datetime, minutes: int) -> datetime:
        # Aware + timedelta is wall-clock arithmetic: 09:00 stays 09:00 local on a DST day.
        local = midnight + timedelta(minutes=minutes)
        return local.astimezone(UTC)


TWENTY_FOUR_SEVEN = BusinessCalendar(name="24x7", always_open=True)
"""Priority 1 runs on this unless a policy says otherwise."""
