"""Deciding a new ticket's priority (1-5) and queue from the team leads' rules.

Pure: no I/O. The rules come from ``rules.yaml`` (read by
``adapters/rules_file.py``) and are compiled once; a decision is then a few
set operations per rule, fast enough for thousands of tickets a second with
hundreds of rules.

Priority: the ITIL impact x urgency matrix gives the base (or the default
when the reporter gave no impact or no urgency); then the first priority rule
that matches sets the priority or raises it. Queue: the first queue rule that
matches, else the default queue. Every decision says which rule fired and why.
"""

from __future__ import annotations

import re
import string
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime
from typing import Literal, cast

from contracts.commands import RouteTicket, RouteTicketData
from contracts.envelope import new_envelope
from contracts.tickets import TicketOpened

Level = Literal["high", "medium", "low"]
LEVELS: tuple[Level, ...] = ("high", "medium", "low")
HIGHEST, LOWEST = 1, 5

# Ids of the commands routing sends are derived from the event that caused them,
# so a redelivered ticket.opened sends the same command id (applied once).
ROUTING_NAMESPACE = uuid.UUID("0b7d3c9e-6f51-4a8e-9d2c-71a4e5f8c3b6")

_WORD = re.compile(r"\w+")
_ASCII_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation if c != "_"})


def words(text: str) -> tuple[str, ...]:
    """Lower-case words of ``text``: keywords match whole words, ignoring case and punctuation."""
    folded = text.casefold()
    # Fast path (three times the regex's speed): most text is words, spaces and ASCII punctuation.
    tokens = folded.translate(_ASCII_PUNCTUATION).split()
    if all(map(str.isalnum, tokens)):
        return tuple(tokens)
    return tuple(_WORD.findall(folded))


def keyword(text: str) -> str:
    """A keyword or phrase as it is matched: ``"Log-in  failed"`` -> ``"log in failed"``."""
    return " ".join(words(text))


# --- what routing looks at ---------------------------------------------------------


@dataclass(frozen=True)
class TicketFacts:
    """The facts of a new ticket that rules may match on."""

    subject: str
    description: str = ""
    components: tuple[str, ...] = ()
    impact: Level | None = None
    urgency: Level | None = None
    channel: str = "web"
    vip: bool = False
    department: str | None = None


@dataclass(frozen=True)
class _Seen:
    """The facts prepared once per decision, in the form every rule compares against."""

    phrases: frozenset[str]
    components: frozenset[str]
    department: str | None
    channel: str
    vip: bool

    @classmethod
    def of(cls, ticket: TicketFacts, phrase_starts: Mapping[str, int]) -> _Seen:
        phrases: set[str] = set()
        for text in (ticket.subject, ticket.description):
            tokens = words(text)
            phrases.update(tokens)
            # Only cut the phrases some rule could match: those starting with a phrase's first word.
            for i, token in enumerate(tokens):
                if (longest := phrase_starts.get(token)) is not None:
                    phrases.update(" ".join(tokens[i : i + n]) for n in range(2, longest + 1) if i + n <= len(tokens))
        return cls(
            phrases=frozenset(phrases),
            components=frozenset(c.strip().casefold() for c in ticket.components),
            department=ticket.department.strip().casefold() if ticket.department else None,
            channel=ticket.channel,
            vip=ticket.vip,
        )


# --- rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conditions:
    """What a rule matches: every condition given must hold; any value of a list will do."""

    keywords: frozenset[str] = frozenset()  # compared by :func:`keyword` form
    components: frozenset[str] = frozenset()  # case-folded
    departments: frozenset[str] = frozenset()  # case-folded
    channels: frozenset[str] = frozenset()
    vip: bool | None = None

    @classmethod
    def of(
        cls,
        *,
        keywords: Iterable[str] = (),
        components: Iterable[str] = (),
        departments: Iterable[str] = (),
        channels: Iterable[str] = (),
        vip: bool | None = None,
    ) -> Conditions:
        return cls(
            keywords=frozenset(filter(None, map(keyword, keywords))),
            components=frozenset(c.strip().casefold() for c in components),
            departments=frozenset(d.strip().casefold() for d in departments),
            channels=frozenset(channels),
            vip=vip,
        )

    def hold_for(self, seen: _Seen) -> bool:
        # Cheapest checks first: most rules fail on one of them.
        return (
            (self.vip is None or self.vip == seen.vip)
            and (not self.channels or seen.channel in self.channels)
            and (not self.departments or seen.department in self.departments)
            and (not self.components or not self.components.isdisjoint(seen.components))
            and (not self.keywords or not self.keywords.isdisjoint(seen.phrases))
        )

    def explain(self, seen: _Seen) -> str:
        """Why the conditions hold, in words (called only for the rule that fired)."""
        why = []
        if self.keywords:
            why.append("mentions " + _quoted(self.keywords & seen.phrases))
        if self.components:
            why.append("component " + _quoted(self.components & seen.components))
        if self.departments:
            why.append(f"customer's department is {seen.department!r}")
        if self.channels:
            why.append(f"reported by {seen.channel}")
        if self.vip is not None:
            why.append("customer is VIP" if self.vip else "customer is not VIP")
        return ", ".join(why)


@dataclass(frozen=True)
class PriorityRule:
    name: str
    when: Conditions
    set_to: int | None = None  # exactly one of set_to, raise_by
    raise_by: int | None = None
    reason: str | None = None  # the team lead's words, if given

    def apply(self, base: int) -> int:
        if self.set_to is not None:
            return self.set_to
        return max(HIGHEST, base - (self.raise_by or 0))


@dataclass(frozen=True)
class QueueRule:
    name: str
    when: Conditions
    queue: str
    reason: str | None = None


@dataclass(frozen=True)
class PriorityMatrix:
    """ITIL: impact x urgency -> priority; the default when either is not given."""

    cells: Mapping[tuple[Level, Level], int]
    default: int = 3

    def priority(self, impact: Level | None, urgency: Level | None) -> tuple[int, str, str]:
        """(priority, rule, reason)."""
        if impact is None or urgency is None:
            missing = " and ".join(n for n, v in (("impact", impact), ("urgency", urgency)) if v is None)
            return self.default, "default", f"no {missing} given: default priority {self.default}"
        p = self.cells[(impact, urgency)]
        return p, "matrix", f"impact {impact} x urgency {urgency}: priority {p}"


@dataclass(frozen=True)
class RoutingPolicy:
    matrix: PriorityMatrix
    priority_rules: tuple[PriorityRule, ...] = ()
    queue_rules: tuple[QueueRule, ...] = ()
    default_queue: str = "L1-service-desk"

    @cached_property
    def phrase_starts(self) -> Mapping[str, int]:
        """First word of every keyword phrase -> the most words a phrase starting with it has."""
        starts: dict[str, int] = {}
        for rule in (*self.priority_rules, *self.queue_rules):
            for phrase in rule.when.keywords:
                first, *rest = phrase.split(" ")
                if rest:
                    starts[first] = max(starts.get(first, 0), len(rest) + 1)
        return starts


@dataclass(frozen=True)
class Decision:
    priority: int
    priority_rule: str
    priority_reason: str
    queue: str
    queue_rule: str
    queue_reason: str


def decide(policy: RoutingPolicy, ticket: TicketFacts) -> Decision:
    """The ticket's priority and queue; in each list of rules the first that matches wins."""
    seen = _Seen.of(ticket, policy.phrase_starts)
    priority, p_rule, p_reason = policy.matrix.priority(ticket.impact, ticket.urgency)
    for rule in policy.priority_rules:
        if rule.when.hold_for(seen):
            base, priority = priority, rule.apply(priority)
            change = f"priority {priority}" if rule.set_to is not None else f"raised from {base} to {priority}"
            p_rule, p_reason = rule.name, f"{_lead(rule.reason)}{rule.when.explain(seen)}: {change} ({p_reason})"
            break
    queue, q_rule, q_reason = policy.default_queue, "default", "no queue rule matched: default queue"
    for qr in policy.queue_rules:
        if qr.when.hold_for(seen):
            queue, q_rule, q_reason = qr.queue, qr.name, f"{_lead(qr.reason)}{qr.when.explain(seen)}"
            break
    return Decision(priority, p_rule, p_reason, queue, q_rule, q_reason)


def route_command(opened: TicketOpened, decision: Decision, now: datetime) -> RouteTicket:
    """The command that tells the ticket service the decision; its id follows from the opened event."""
    data = RouteTicketData(
        priority=cast(Literal[1, 2, 3, 4, 5], decision.priority),
        priority_rule=decision.priority_rule,
        priority_reason=decision.priority_reason,
        queue=decision.queue,
        queue_rule=decision.queue_rule,
        queue_reason=decision.queue_reason,
    )
    command_id = uuid.uuid5(ROUTING_NAMESPACE, f"route:{opened.event_id}")
    message = new_envelope(
        RouteTicket, data, ticket_id=opened.ticket_id, causation=opened, event_id=command_id, occurred_at=now
    )
    return cast(RouteTicket, message)


def _quoted(values: Iterable[str]) -> str:
    return " and ".join(repr(v) for v in sorted(values))


def _lead(reason: str | None) -> str:
    return f"{reason}; " if reason else ""
