"""Reading the SLA policies file (calendars and policies), with errors naming file and line.

The team lead's file is checked once at start-up: a wrong time zone, an
unknown calendar, a target that does not parse or a priority no policy
covers stops the service with ``file:line: problem`` instead of a ticket
quietly held to no target.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runtime.config_files import ConfigFileError, MarkedDocument, read
from runtime.settings import ConfigError
from services.escalation.calendar import (
    TWENTY_FOUR_SEVEN,
    BusinessCalendar,
    OpeningHours,
)
from services.escalation.sla import (
    EscalationCriteria,
    PolicyMatch,
    SlaPolicies,
    SlaPolicy,
    SlaTargets,
)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$")
_OPENING = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")


class PoliciesFileError(ConfigError):
    """The SLA policies file is missing or wrong; the message lists each problem as ``file:line: ...``."""


def parse_duration(text: str | float) -> timedelta:
    """``"4h"``, ``"1d 2h"``, ``"90m"``, ``"30s"`` or a number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError("a duration must be positive")
        return timedelta(seconds=text)
    found = _DURATION.match(str(text))
    if not found or not any(found.groups()):
        raise ValueError(f"{text!r} is not a duration (write e.g. 15m, 4h, 1d 2h, or seconds)")
    days, hours, minutes, seconds = (int(g or 0) for g in found.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if duration <= timedelta(0):
        raise ValueError("a duration must be positive")
    return duration


def parse_openings(text: str) -> OpeningHours:
    """``"09:00-12:00, 13:00-17:00"`` -> minutes after midnight; ``24:00`` ends at midnight."""
    openings = []
    for part in (p.strip() for p in text.split(",")):
        found = _OPENING.match(part)
        if not found:
            raise ValueError(f"{part!r} is not an opening (write e.g. 09:00-17:00)")
        h1, m1, h2, m2 = map(int, found.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if m1 > 59 or m2 > 59 or not 0 <= start < end <= 24 * 60:
            raise ValueError(f"{part!r}: the opening must end after it starts, within the day")
        if openings and start < openings[-1][1]:
            raise ValueError(f"{part!r} overlaps the opening before it (list them in order)")
        openings.append((start, end))
    return tuple(openings)


class _Calendar(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time_zone: str
    hours: dict[str, str] = Field(min_length=1, description="weekday -> openings")
    holidays: list[date] = Field(default_factory=list)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from None
        return value

    @field_validator("hours")
    @classmethod
    def _weekdays(cls, value: dict[str, str]) -> dict[str, str]:
        for day, openings in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"{day!r} is not a weekday (monday ... sunday)")
            parse_openings(openings)
        return value

    def build(self, name: str) -> BusinessCalendar:
        hours = {WEEKDAYS.index(day): parse_openings(text) for day, text in self.hours.items()}
        return BusinessCalendar(name, ZoneInfo(self.time_zone), hours, frozenset(self.holidays))


class _Match(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: list[int] | int | None = None
    customer: list[str] | str | None = None
    queue: list[str] | str | None = None
    component: list[str] | str | None = None
    vip: bool | None = None

    @field_validator("priority")
    @classmethod
    def _priorities(cls, value: list[int] | int | None) -> list[int] | int | None:
        for p in _listed(value):
            if not 1 <= p <= 5:
                raise ValueError(f"priority {p} is not 1-5")
        return value

    def build(self) -> PolicyMatch:
        return PolicyMatch(
            priorities=frozenset(_listed(self.priority)),
            customers=frozenset(_listed(self.customer)),
            queues=frozenset(_listed(self.queue)),
            components=frozenset(_listed(self.component)),
            vip=self.vip,
        )


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60)
    match: _Match = Field(default_factory=_Match)
    calendar: str | None = None
    first_response: str | int | float
    next_update: str | int | float | None = None
    resolution: str | int | float | None = None
    warn_at_percent: list[int] = Field(default_factory=lambda: [75])

    @field_validator("first_response", "next_update", "resolution")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("warn_at_percent")
    @classmethod
    def _percentages(cls, value: list[int]) -> list[int]:
        for percent in value:
            if not 1 <= percent <= 99:
                raise ValueError(f"{percent}% is not a warning point (1-99; 100% is the breach)")
        return sorted(set(value))


class _Criteria(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_replies_unanswered: int | None = Field(default=None, ge=1)
    reopened: int | None = Field(default=None, ge=1)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    escalate_at_once_when: _Criteria = Field(default_factory=_Criteria)
    default_calendar: str = Field(description="Calendar of policies that name none (priority 1 only: 24x7).")
    calendars: dict[str, _Calendar] = Field(default_factory=dict)
    policies: list[_Policy] = Field(min_length=1)


def load_policies(path: Path) -> SlaPolicies:
    try:
        document = read(path)
        return _build(document)
    except ConfigFileError as exc:
        raise PoliciesFileError(str(exc)) from None


def _build(document: MarkedDocument) -> SlaPolicies:
    try:
        parsed = _File.model_validate(document.data)
    except ValidationError as exc:
        raise ConfigFileError(document.validation_problems(exc)) from None
    calendars = {"24x7": TWENTY_FOUR_SEVEN} | {name: c.build(name) for name, c in parsed.calendars.items()}
    problems: list[str] = []
    if parsed.default_calendar not in calendars:
        problems.append(document.problem(("default_calendar",), f"unknown calendar {parsed.default_calendar!r}"))
    policies = []
    for index, entry in enumerate(parsed.policies):
        where = ("policies", index)
        if entry.calendar is not None and entry.calendar not in calendars:
            problems.append(document.problem((*where, "calendar"), f"unknown calendar {entry.calendar!r}"))
            continue
        if any(p.name == entry.name for p in policies):
            problems.append(document.problem((*where, "name"), f"policy name {entry.name!r} is used twice"))
        policies.append(_policy(entry, calendars, parsed.default_calendar))
    problems += _uncovered_priorities(policies, document)
    if problems:
        raise ConfigFileError(problems)
    criteria = EscalationCriteria(
        parsed.escalate_at_once_when.customer_replies_unanswered, parsed.escalate_at_once_when.reopened
    )
    return SlaPolicies(tuple(policies), calendars, criteria)


def _policy(entry: _Policy, calendars: dict[str, BusinessCalendar], default_calendar: str) -> SlaPolicy:
    match = entry.match.build()
    # Priority 1 is a "the service is down" ticket: its clock runs nights and weekends unless the file says not.
    fallback = "24x7" if match.priorities == {1} else default_calendar
    return SlaPolicy(
        name=entry.name,
        match=match,
        calendar=calendars.get(entry.calendar or fallback, TWENTY_FOUR_SEVEN),
        targets=SlaTargets(
            first_response=parse_duration(entry.first_response),
            next_update=parse_duration(entry.next_update) if entry.next_update is not None else None,
            resolution=parse_duration(entry.resolution) if entry.resolution is not None else None,
        ),
        warn_at_percent=tuple(entry.warn_at_percent),
    )


def _uncovered_priorities(policies: list[SlaPolicy], document: MarkedDocument) -> list[str]:
    """Every priority needs a policy that matches on priority alone, so no ticket is ever without one."""
    covered: set[int] = set()
    for policy in policies:
        if policy.match.only_priority:
            covered |= policy.match.priorities or {1, 2, 3, 4, 5}
    missing = sorted({1, 2, 3, 4, 5} - covered)
    if not missing:
        return []
    listed = ", ".join(map(str, missing))
    return [document.problem(("policies",), f"no policy matches on priority alone for priority {listed}; "
                                            "add one (conditions on customer, queue, component or vip do not count)")]


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
