"""Deciding a ticket's priority (1-5) and queue from the team leads' rules.

Pure: no I/O. The rules come from ``rules.yaml`` (read by
``adapters/rules_file.py``) and are compiled once; a decision is then a few
set operations per candidate rule. Rules are indexed by their keywords and
components, so a decision only looks at the rules that could match the
ticket's words, which keeps hundreds of rules fast.

Priority: the ITIL impact x urgency matrix gives the base (or the default
when the reporter gave no impact or no urgency); then the first priority rule
that matches sets the priority or raises it. Queue: the first queue rule that
matches (it may also require skills of the agent, or name the agent the
ticket goes to), else the default queue.
Every decision says which rule fired and why, and which later rules also
matched but were not applied (first match wins).
"""

from __future__ import annotations

import re
import string
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Literal, cast
from zoneinfo import ZoneInfo

from contracts.commands import RouteTicket, RouteTicketData
from contracts.envelope import Envelope, new_envelope

Level = Literal["high", "medium", "low"]
LEVELS: tuple[Level, ...] = ("high", "medium", "low")
CRITICALITIES = ("critical", "high", "medium", "low")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HIGHEST, LOWEST = 1, 5

# Ids of the commands routing sends are derived from the event that caused them,
# so a redelivered event sends the same command id (applied once).
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


def fold(value: str) -> str:
    return value.strip().casefold()


def language_ranges(tag: str | None) -> frozenset[str]:
    """The (folded) language ranges a tag falls in, by RFC 4647 basic filtering: ``de-ch`` is in
    ``de-ch`` and ``de``, so a rule or an agent naming ``de`` covers it; ``de`` is not in ``de-ch``."""
    if not tag:
        return frozenset()
    parts = tag.split("-")
    return frozenset("-".join(parts[:n]) for n in range(1, len(parts) + 1))


def speaks(languages: frozenset[str], tag: str | None) -> bool:
    """Whether someone speaking these (folded) languages can answer in the (folded) tag."""
    return not languages.isdisjoint(language_ranges(tag))


# --- what routing looks at ---------------------------------------------------------


@dataclass(frozen=True)
class TicketFacts:
    """The facts of a ticket that rules may match on."""

    subject: str
    description: str = ""
    components: tuple[str, ...] = ()
    impact: Level | None = None
    urgency: Level | None = None
    channel: str = "web"
    vip: bool = False
    department: str | None = None
    customer_id: str | None = None
    language: str | None = None
    reported_at: datetime | None = None  # time of day rules look at; None: now
    level: int = 1  # support level (raised by escalation)


@dataclass(slots=True)
class _Seen:
    """The facts prepared once per decision, in the form every rule compares against."""

    phrases: set[str]
    components: frozenset[str]
    criticalities: frozenset[str]
    department: str | None
    customer_id: str | None
    language: str | None
    language_ranges: frozenset[str]  # the ranges a rule's `languages` may name to cover the language
    channel: str
    vip: bool
    impact: str | None
    urgency: str | None
    level: int
    minute: int  # of the day, in the rules' time zone
    weekday: int  # 0 = Monday
    priority: int = 0  # known once the priority is decided (queue rules may match on it)


def _see(ticket: TicketFacts, policy: RoutingPolicy, now: datetime) -> _Seen:
    phrases: set[str] = set()
    prefixes, known = policy.phrase_prefixes
    for text in (ticket.subject, ticket.description):
        tokens = words(text)
        phrases.update(tokens)
        # Only cut the phrases some rule could match: grow one while it is the start of a keyword phrase.
        end = len(tokens)
        for i, token in enumerate(tokens):
            if token in prefixes:
                phrase, j = token, i + 1
                while j < end:
                    phrase = f"{phrase} {tokens[j]}"
                    if phrase in known:
                        phrases.add(phrase)
                    if phrase not in prefixes:
                        break
                    j += 1
    components = frozenset(map(fold, ticket.components))
    local = (ticket.reported_at or now).astimezone(policy.zone)
    language = fold(ticket.language) if ticket.language else None
    return _Seen(
        phrases=phrases,
        components=components,
        criticalities=frozenset(policy.criticality[c] for c in components if c in policy.criticality),
        department=fold(ticket.department) if ticket.department else None,
        customer_id=ticket.customer_id,
        language=language,
        language_ranges=language_ranges(language),
        channel=ticket.channel,
        vip=ticket.vip,
        impact=ticket.impact,
        urgency=ticket.urgency,
        level=ticket.level,
        minute=local.hour * 60 + local.minute,
        weekday=local.weekday(),
    )


# --- rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hours:
    """A span of the day, ``start`` to ``end`` in minutes; it may run past midnight (18:00-08:00)."""

    start: int
    end: int

    def __contains__(self, minute: int) -> bool:
        if self.start <= self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"


@dataclass(frozen=True)
class Conditions:
    """What a rule matches: every condition given must hold; any value of a list will do."""

    keywords: frozenset[str] = frozenset()  # compared by :func:`keyword` form
    components: frozenset[str] = frozenset()  # case-folded
    criticality: frozenset[str] = frozenset()  # of any of the ticket's components
    departments: frozenset[str] = frozenset()  # case-folded
    customers: frozenset[str] = frozenset()  # customer ids
    channels: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()  # case-folded
    impacts: frozenset[str] = frozenset()
    urgencies: frozenset[str] = frozenset()
    levels: frozenset[int] = frozenset()
    priorities: frozenset[int] = frozenset()  # queue rules only: the priority just decided
    hours: tuple[Hours, ...] = ()
    weekdays: frozenset[int] = frozenset()
    vip: bool | None = None

    @classmethod
    def of(
        cls,
        *,
        keywords: Iterable[str] = (),
        components: Iterable[str] = (),
        departments: Iterable[str] = (),
        languages: Iterable[str] = (),
        hours: Iterable[Hours] = (),
        **rest: object,
    ) -> Conditions:
        """Conditions from what a team lead writes (case and spacing folded)."""
        sets = {k: frozenset(cast(Iterable[object], v)) for k, v in rest.items() if k != "vip"}
        return cls(
            keywords=frozenset(filter(None, map(keyword, keywords))),
            components=frozenset(map(fold, components)),
            departments=frozenset(map(fold, departments)),
            languages=frozenset(map(fold, languages)),
            hours=tuple(hours),
            vip=cast(bool | None, rest.get("vip")),
            **sets,  # type: ignore[arg-type]
        )

    def hold_for(self, seen: _Seen) -> bool:
        # Cheapest checks first: most rules fail on one of them.
        return (
            (self.vip is None or self.vip == seen.vip)
            and (not self.channels or seen.channel in self.channels)
            and (not self.departments or seen.department in self.departments)
            and (not self.customers or seen.customer_id in self.customers)
            and (not self.languages or not self.languages.isdisjoint(seen.language_ranges))
            and (not self.impacts or seen.impact in self.impacts)
            and (not self.urgencies or seen.urgency in self.urgencies)
            and (not self.levels or seen.level in self.levels)
            and (not self.priorities or seen.priority in self.priorities)
            and (not self.weekdays or seen.weekday in self.weekdays)
            and (not self.hours or any(seen.minute in h for h in self.hours))
            and (not self.criticality or not self.criticality.isdisjoint(seen.criticalities))
            and (not self.components or not self.components.isdisjoint(seen.components))
            and (not self.keywords or not self.keywords.isdisjoint(seen.phrases))
        )

    def explain(self, seen: _Seen) -> str:
        """Why the conditions hold, in words (called only for rules that matched)."""
        why = []
        if self.keywords:
            why.append("mentions " + _quoted(self.keywords & seen.phrases))
        if self.components:
            why.append("component " + _quoted(self.components & seen.components))
        if self.criticality:
            why.append("a component of criticality " + _quoted(self.criticality & seen.criticalities))
        if self.departments:
            why.append(f"customer's department is {seen.department!r}")
        if self.customers:
            why.append(f"customer is {seen.customer_id!r}")
        if self.channels:
            why.append(f"reported by {seen.channel}")
        if self.languages:
            why.append(f"language {seen.language!r}")
        if self.impacts:
            why.append(f"impact {seen.impact}")
        if self.urgencies:
            why.append(f"urgency {seen.urgency}")
        if self.levels:
            why.append(f"at support level {seen.level}")
        if self.priorities:
            why.append(f"priority {seen.priority}")
        if self.weekdays:
            why.append(f"on a {WEEKDAYS[seen.weekday].capitalize()}")
        if self.hours:
            why.append(f"at {seen.minute // 60:02d}:{seen.minute % 60:02d} (" + ", ".join(map(str, self.hours)) + ")")
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
    skills: frozenset[str] = frozenset()  # an agent the ticket is assigned to must have all of them
    assign_to: str | None = None  # the agent the ticket goes to, whatever the queue's strategy


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


Rule = PriorityRule | QueueRule


# The conditions a rule can be found by, most selective first: (condition, what of the ticket it compares, many?).
_ANCHORS = (
    ("keywords", "phrases", True),
    ("components", "components", True),
    ("customers", "customer_id", False),
    ("departments", "department", False),
    ("criticality", "criticalities", True),
    ("languages", "language_ranges", True),
    ("channels", "channel", False),
)


class _RuleIndex:
    """The rules of one list, found by the facts that could make them match.

    Every rule is filed under its most selective condition (a rule with
    keywords can only match a ticket containing one of them; likewise its
    customers, departments...); rules with none of those are always
    candidates. Candidates are checked in file order.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._always: list[int] = []
        self._filed: dict[str, dict[object, list[int]]] = {}
        for i, rule in enumerate(self.rules):
            anchor = next(((c, s) for c, s, _ in _ANCHORS if getattr(rule.when, c)), None)
            if anchor is None:
                self._always.append(i)
                continue
            shelf = self._filed.setdefault(anchor[1], {})
            for value in getattr(rule.when, anchor[0]):
                shelf.setdefault(value, []).append(i)
        self._shelves = [
            (s, many, self._filed[s], frozenset(self._filed[s])) for _, s, many in _ANCHORS if s in self._filed
        ]

    def matching(self, seen: _Seen) -> list[Rule]:
        """Every rule that matches, in file order."""
        candidates = set(self._always)
        for fact, many, shelf, labels in self._shelves:
            value = getattr(seen, fact)
            if many:
                for item in labels.intersection(value):  # in C, over the smaller of the two
                    candidates.update(shelf[item])
            elif value in shelf:
                candidates.update(shelf[value])
        rules = self.rules
        return [rules[i] for i in sorted(candidates) if rules[i].when.hold_for(seen)]


@dataclass(frozen=True)
class RoutingPolicy:
    matrix: PriorityMatrix
    priority_rules: tuple[PriorityRule, ...] = ()
    queue_rules: tuple[QueueRule, ...] = ()
    default_queue: str = "L1-service-desk"
    criticality: Mapping[str, str] = field(default_factory=dict)  # component (case-folded) -> criticality
    strategies: Mapping[str, str] = field(default_factory=dict)  # queue -> assignment strategy; pull if absent
    timezone: str = "UTC"

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def phrase_prefixes(self) -> tuple[frozenset[str], frozenset[str]]:
        """(every proper start of a keyword phrase of several words, those phrases)."""
        prefixes: set[str] = set()
        known: set[str] = set()
        for rule in (*self.priority_rules, *self.queue_rules):
            for phrase in rule.when.keywords:
                parts = phrase.split(" ")
                if len(parts) > 1:
                    known.add(phrase)
                    prefixes.update(" ".join(parts[:n]) for n in range(1, len(parts)))
        return frozenset(prefixes), frozenset(known)

    @cached_property
    def priority_index(self) -> _RuleIndex:
        return _RuleIndex(self.priority_rules)

    @cached_property
    def queue_index(self) -> _RuleIndex:
        return _RuleIndex(self.queue_rules)

    def strategy(self, queue: str) -> str:
        return self.strategies.get(queue, "pull")


@dataclass(frozen=True)
class Match:
    """One rule that matched, in the explanation: ``applied`` is False for one a rule before it beat."""

    kind: Literal["priority", "queue"]
    rule: str
    why: str
    applied: bool


@dataclass(frozen=True)
class Decision:
    priority: int
    priority_rule: str
    priority_reason: str
    queue: str
    queue_rule: str
    queue_reason: str
    skills: frozenset[str] = frozenset()
    matches: tuple[Match, ...] = ()
    assign_to: str | None = None  # named by the queue rule that fired


def decide(
    policy: RoutingPolicy, ticket: TicketFacts, now: datetime | None = None, *, kept_priority: int | None = None
) -> Decision:
    """The ticket's priority and queue; in each list of rules the first that matches wins.

    ``kept_priority`` (a human override) is the priority queue rules see; the
    priority rules are still evaluated, so the explanation can say what they would give.
    """
    seen = _see(ticket, policy, now or datetime.now(UTC))
    matches: list[Match] = []
    priority, p_rule, p_reason = policy.matrix.priority(ticket.impact, ticket.urgency)
    for i, rule in enumerate(cast(list[PriorityRule], policy.priority_index.matching(seen))):
        why = f"{_lead(rule.reason)}{rule.when.explain(seen)}"
        matches.append(Match("priority", rule.name, why, applied=i == 0))
        if i == 0:
            base, priority = priority, rule.apply(priority)
            change = f"priority {priority}" if rule.set_to is not None else f"raised from {base} to {priority}"
            p_rule, p_reason = rule.name, f"{why}: {change} ({p_reason})"
    seen.priority = priority if kept_priority is None else kept_priority
    queue, q_rule, q_reason, skills, assign_to = (
        policy.default_queue,
        "default",
        "no queue rule matched: default queue",
        frozenset(),
        None,
    )
    for i, qr in enumerate(cast(list[QueueRule], policy.queue_index.matching(seen))):
        why = f"{_lead(qr.reason)}{qr.when.explain(seen)}"
        matches.append(Match("queue", qr.name, why, applied=i == 0))
        if i == 0:
            queue, q_rule, q_reason, skills, assign_to = qr.queue, qr.name, why, qr.skills, qr.assign_to
    return Decision(priority, p_rule, p_reason, queue, q_rule, q_reason, skills, tuple(matches), assign_to)


def route_command(cause: Envelope, purpose: str, decision: Decision, now: datetime) -> RouteTicket:
    """The command that tells the ticket service the decision; its id follows from its cause."""
    data = RouteTicketData(
        priority=cast(Literal[1, 2, 3, 4, 5], decision.priority),
        priority_rule=decision.priority_rule,
        priority_reason=decision.priority_reason,
        queue=decision.queue,
        queue_rule=decision.queue_rule,
        queue_reason=decision.queue_reason,
    )
    command_id = uuid.uuid5(ROUTING_NAMESPACE, f"{purpose}:{cause.event_id}")
    message = new_envelope(
        RouteTicket, data, ticket_id=cause.ticket_id, causation=cause, event_id=command_id, occurred_at=now
    )
    return cast(RouteTicket, message)


def _quoted(values: Iterable[str]) -> str:
    return " and ".join(repr(v) for v in sorted(values))


def _lead(reason: str | None) -> str:
    return f"{reason}; " if reason else ""
