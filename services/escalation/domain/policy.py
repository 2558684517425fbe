"""The escalation policy: the support levels a ticket climbs, and the SLA targets that make it climb.

A ticket is held to three targets of its SLA policy (``sla.py``): the first
response (a claim, an assignment or a public reply), the next update (a
public reply at most this long after the last one) and the resolution. Each
is counted in business time on the policy's calendar, and each, when it
passes, moves the ticket up one level. ``Timing`` is one target as a clock
counts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from services.escalation.calendar import TWENTY_FOUR_SEVEN, BusinessCalendar
from services.escalation.sla import EscalationCriteria, SlaPolicies, TicketFacts

OVERRIDE_POLICY = "override"
"""The policy name a deadline carries when ESCALATION_UNCLAIMED_AFTER_S replaces the policies' targets."""


class Target(StrEnum):
    """The SLA targets a ticket is held to; each has its own clock."""

    FIRST_RESPONSE = "first_response"
    NEXT_UPDATE = "next_update"
    RESOLUTION = "resolution"


@dataclass(frozen=True)
class Contact:
    """One more way a level hears of an escalation, besides its e-mail: notify sends it by ``method``."""

    method: str  # sms, pager, phone, alarm, flag (contracts.notifications.Method)
    phone: str | None = None
    id: str | None = None  # a pager id, an alarm name...
    email: str | None = None


@dataclass(frozen=True)
class Level:
    """One support level: where an escalated ticket goes and who hears of it."""

    number: int
    name: str
    queue: str | None  # None for level 1 (the queue routing chose), or for a level that is only its on-call agent
    email: str
    notify: tuple[Contact, ...] = ()
    agent: str | None = None  # a named on-call agent: the escalated ticket is assigned to them


@dataclass(frozen=True)
class Timing:
    """How one target is counted: its length, the calendar, the warnings, and the policy they came from."""

    policy: str
    target: timedelta
    calendar: BusinessCalendar
    warn_at_percent: tuple[int, ...] = ()

    def warning_after(self, warned: int) -> float | None:
        """Business seconds into the target at which the warning after ``warned`` sent ones falls due."""
        if warned >= len(self.warn_at_percent):
            return None
        return self.target.total_seconds() * self.warn_at_percent[warned] / 100


@dataclass(frozen=True)
class EscalationPolicy:
    levels: tuple[Level, ...]
    unclaimed_after: timedelta | None = None  # set: every ticket gets this target, counted 24x7 (demos, tests)
    sla: SlaPolicies | None = None

    def __post_init__(self) -> None:
        if self.unclaimed_after is None and self.sla is None:
            raise ValueError("an escalation policy needs SLA policies or a fixed unclaimed_after")

    def level(self, number: int) -> Level | None:
        return next((lvl for lvl in self.levels if lvl.number == number), None)

    def next_level(self, number: int) -> Level | None:
        return self.level(number + 1)

    @property
    def criteria(self) -> EscalationCriteria:
        return self.sla.criteria if self.sla is not None else EscalationCriteria()

    def timing(self, facts: TicketFacts) -> Timing:
        """The first-response target: every ticket has one."""
        if self.unclaimed_after is not None or self.sla is None:
            return Timing(OVERRIDE_POLICY, self.unclaimed_after or timedelta(0), TWENTY_FOUR_SEVEN)
        chosen = self.sla.for_ticket(facts)
        return Timing(chosen.name, chosen.targets.first_response, chosen.calendar, chosen.warn_at_percent)

    def timing_of(self, target: Target, facts: TicketFacts) -> Timing | None:
        """How ``target`` is counted for a ticket; None when its policy sets none (or the override replaces them)."""
        if target is Target.FIRST_RESPONSE:
            return self.timing(facts)
        if self.unclaimed_after is not None or self.sla is None:
            return None
        chosen = self.sla.for_ticket(facts)
        length = chosen.targets.next_update if target is Target.NEXT_UPDATE else chosen.targets.resolution
        if length is None:
            return None
        return Timing(chosen.name, length, chosen.calendar, chosen.warn_at_percent)
