"""SLA policies: which targets a ticket is held to, and on which calendar they are counted.

A policy names its targets (first response, next update, resolution), the
percentages of a target at which a warning goes out, and the business-hours
calendar the targets count in. The policies file lists them in order; the
first whose conditions all hold for a ticket applies (so specific policies
such as "VIP customers, priority 2" come before the plain per-priority ones).
Pure data and matching; reading the file is ``policies_file.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from services.escalation.calendar import BusinessCalendar

DEFAULT_PRIORITY = 3
"""The priority a ticket is held to until routing prioritises it (usually within a second of opening)."""


@dataclass(frozen=True)
class TicketFacts:
    """What policies may match on, as the ticket events tell it."""

    priority: int = DEFAULT_PRIORITY
    customer_id: str | None = None
    vip: bool = False
    queue: str | None = None
    components: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyMatch:
    """A policy's conditions; an empty set or None means "any"."""

    priorities: frozenset[int] = frozenset()
    customers: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()
    components: frozenset[str] = frozenset()
    vip: bool | None = None

    def holds_for(self, facts: TicketFacts) -> bool:
        return (
            (not self.priorities or facts.priority in self.priorities)
            and (not self.customers or facts.customer_id in self.customers)
            and (not self.queues or facts.queue in self.queues)
            and (not self.components or bool(self.components.intersection(facts.components)))
            and (self.vip is None or facts.vip == self.vip)
        )

    @property
    def only_priority(self) -> bool:
        """True for a plain per-priority policy: the fallback every priority needs."""
        return not (self.customers or self.queues or self.components or self.vip is not None)


@dataclass(frozen=True)
class SlaTargets:
    first_response: timedelta
    next_update: timedelta | None = None
    resolution: timedelta | None = None


@dataclass(frozen=True)
class SlaPolicy:
    name: str
    match: PolicyMatch
    calendar: BusinessCalendar
    targets: SlaTargets
    warn_at_percent: tuple[int, ...] = (75,)

    def warn_after(self, target: timedelta) -> timedelta | None:
        """The business time after which the first warning of ``target`` goes out (None: no warnings)."""
        if not self.warn_at_percent:
            return None
        return target * (min(self.warn_at_percent) / 100)


@dataclass(frozen=True)
class EscalationCriteria:
    """Reasons to escalate at once, before any target passes (None: not used)."""

    customer_replies_unanswered: int | None = None  # while nobody has claimed the ticket
    reopened: int | None = None


@dataclass(frozen=True)
class SlaPolicies:
    policies: tuple[SlaPolicy, ...]
    calendars: dict[str, BusinessCalendar] = field(default_factory=dict)
    criteria: EscalationCriteria = EscalationCriteria()

    def for_ticket(self, facts: TicketFacts) -> SlaPolicy:
        """The first policy whose conditions hold; the file's check guarantees one for every priority."""
        for policy in self.policies:
            if policy.match.holds_for(facts):
                return policy
        return self.policies[-1]

    def named(self, name: str) -> SlaPolicy | None:
        return next((p for p in self.policies if p.name == name), None)
