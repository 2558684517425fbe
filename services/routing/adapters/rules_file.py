"""The routing rules file (``rules.yaml``), read and validated at start-up.

The format is documented for team leads in docs/routing.md. Every problem in
the file is reported at once, each as ``file:line: where: what``; the service
does not start with a file that has one. An agent a queue rule names
(``assign_to``) must be in the agents file.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from contracts.incidents import Channel
from runtime.config_files import ConfigFileError, MarkedDocument, read
from services.routing.domain import (
    LEVELS,
    WEEKDAYS,
    Conditions,
    Hours,
    PriorityMatrix,
    PriorityRule,
    QueueRule,
    RoutingPolicy,
    fold,
    keyword,
)

Priority = Annotated[int, Field(ge=1, le=5, strict=True)]
RuleName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w][\w .:/-]*$")]
QueueName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w][\w .:/-]*$")]
AgentId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\w][\w.@:-]*$")]  # as the agents file
RESERVED_NAMES = {"default", "matrix", "manual"}  # what a decision names when no rule fired, or an agent


class RulesFileError(ConfigFileError):
    """The rules file cannot be used; the message names file, line and problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Criticality = Literal["critical", "high", "medium", "low"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Strategy = Literal["pull", "round_robin", "least_loaded"]
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-4]):([0-5]\d)$")


def _hours(text: str) -> Hours:
    match = _HOURS.match(text.strip())
    if not match:
        raise ValueError(f"hours {text!r}: write a span as 'HH:MM-HH:MM', e.g. '18:00-08:00'")
    h1, m1, h2, m2 = map(int, match.groups())
    return Hours(h1 * 60 + m1, h2 * 60 + m2)


class _When(_Strict):
    keywords: list[str] = Field(default_factory=list)
    components: list[str] = Field(default_factory=list)
    criticality: list[Criticality] = Field(default_factory=list)
    departments: list[str] = Field(default_factory=list)
    customers: list[str] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    impact: list[Literal["high", "medium", "low"]] = Field(default_factory=list)
    urgency: list[Literal["high", "medium", "low"]] = Field(default_factory=list)
    levels: list[Annotated[int, Field(ge=1, le=9, strict=True)]] = Field(default_factory=list)
    hours: list[str] = Field(default_factory=list)
    weekdays: list[Weekday] = Field(default_factory=list)
    vip: Annotated[bool | None, Field(strict=True)] = None

    @field_validator("keywords")
    @classmethod
    def _keywords_have_words(cls, values: list[str]) -> list[str]:
        for value in values:
            if not keyword(value):
                raise ValueError(f"keyword {value!r} has no letters or digits; keywords match whole words")
        return values

    @field_validator("hours")
    @classmethod
    def _hours_are_spans(cls, values: list[str]) -> list[str]:
        for value in values:
            _hours(value)
        return values

    @model_validator(mode="after")
    def _matches_something(self) -> _When:
        if not any(getattr(self, name) for name in type(self).model_fields if name != "vip") and self.vip is None:
            raise ValueError("'when' needs at least one of " + ", ".join(type(self).model_fields))
        return self

    def conditions(self, priorities: list[int] | None = None) -> Conditions:
        return Conditions.of(
            keywords=self.keywords,
            components=self.components,
            departments=self.departments,
            languages=self.languages,
            hours=[_hours(h) for h in self.hours],
            criticality=self.criticality,
            customers=self.customers,
            channels=[c.value for c in self.channels],
            impacts=self.impact,
            urgencies=self.urgency,
            levels=self.levels,
            priorities=priorities or [],
            weekdays=[WEEKDAYS.index(d) for d in self.weekdays],
            vip=self.vip,
        )


class _QueueWhen(_When):
    """Queue rules are looked at once the priority is decided, so they may match on it."""

    priority: list[Priority] = Field(default_factory=list)

    def conditions(self, priorities: list[int] | None = None) -> Conditions:
        return super().conditions(self.priority)


class _Rule(_Strict):
    name: RuleName
    reason: str | None = Field(default=None, max_length=300)
    when: _When

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name.casefold() in RESERVED_NAMES:
            raise ValueError(f"{name!r} is reserved for decisions no rule made; choose another name")
        return name


class _PriorityRule(_Rule):
    set_to: Priority | None = Field(default=None, alias="set")
    raise_by: Annotated[int, Field(ge=1, le=4, strict=True)] | None = None

    @model_validator(mode="after")
    def _one_action(self) -> _PriorityRule:
        if (self.set_to is None) == (self.raise_by is None):
            raise ValueError("give exactly one of 'set: <1-5>' or 'raise_by: <1-4>'")
        return self


class _QueueRule(_Rule):
    when: _QueueWhen
    queue: QueueName
    skills: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list)
    assign_to: AgentId | None = None


class _Row(_Strict):
    high: Priority
    medium: Priority
    low: Priority


class _Matrix(_Strict):
    high: _Row
    medium: _Row
    low: _Row


class _PrioritySection(_Strict):
    default: Priority = 3
    matrix: _Matrix
    rules: list[_PriorityRule] = Field(default_factory=list)


class _QueueSection(_Strict):
    default: QueueName = "L1-service-desk"
    assignment: dict[QueueName, Strategy] = Field(default_factory=dict)
    rules: list[_QueueRule] = Field(default_factory=list)


class _File(_Strict):
    version: Literal[1] = 1
    timezone: str = "UTC"
    components: dict[Annotated[str, Field(min_length=1, max_length=100)], Criticality] = Field(default_factory=dict)
    priority: _PrioritySection
    queues: _QueueSection = Field(default_factory=_QueueSection)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'Europe/London'") from None
        return name


@dataclass(frozen=True)
class KnownAgents:
    """The agents a rule may name: those of the agents file (``file`` None: no agents file)."""

    ids: Collection[str]
    file: Path | None

    def problem(self, agent_id: str) -> str | None:
        if agent_id in self.ids:
            return None
        if self.file is None:
            return f"{agent_id!r} is not an agent: no agents file is configured (ROUTING_AGENTS_FILE is empty)"
        return f"{agent_id!r} is not an agent of the agents file {self.file}"


def load_rules(path: Path, agents: KnownAgents | None = None) -> RoutingPolicy:
    """The routing policy in ``path``, or :class:`RulesFileError` listing every problem.

    ``agents``: the agents ``assign_to`` may name (None: not checked, e.g. a rules file read on its own).
    """
    try:
        document = read(path)
    except ConfigFileError as exc:
        raise RulesFileError(exc.problems) from None
    if not isinstance(document.data, dict):
        raise RulesFileError([document.problem((), "expected a mapping with 'priority' and 'queues' sections")])
    try:
        rules = _File.model_validate(document.data)
    except ValidationError as exc:
        raise RulesFileError(document.validation_problems(exc)) from None
    problems = [
        *_duplicate_names(document, "priority", rules.priority.rules),
        *_duplicate_names(document, "queues", rules.queues.rules),
        *_unknown_agents(document, rules.queues.rules, agents),
    ]
    if problems:
        raise RulesFileError(problems)
    return _policy(rules)


def _duplicate_names(document: MarkedDocument, section: str, rules: Sequence[_Rule]) -> list[str]:
    """Two rules of one list with one name (ignoring case) would make decisions ambiguous to read."""
    first_at: dict[str, int] = {}
    problems = []
    for index, rule in enumerate(rules):
        where = (section, "rules", index, "name")
        first = first_at.setdefault(rule.name.casefold(), index)
        if first != index:
            line = document.line_of((section, "rules", first, "name"))
            problem = f"{section}.rules[{index}].name: {rule.name!r} is already the name of the rule at line {line}"
            problems.append(document.problem(where, f"{problem}; rule names must be unique"))
    return problems


def _unknown_agents(document: MarkedDocument, rules: Sequence[_QueueRule], agents: KnownAgents | None) -> list[str]:
    """A rule naming someone the agents file does not know would assign tickets to nobody who can work them."""
    if agents is None:
        return []
    problems = []
    for index, rule in enumerate(rules):
        if rule.assign_to is not None and (problem := agents.problem(rule.assign_to)) is not None:
            where = ("queues", "rules", index, "assign_to")
            problems.append(document.problem(where, f"queues.rules[{index}].assign_to: {problem}"))
    return problems


def _policy(rules: _File) -> RoutingPolicy:
    m = rules.priority.matrix
    cells = {(impact, urgency): getattr(getattr(m, impact), urgency) for impact in LEVELS for urgency in LEVELS}
    return RoutingPolicy(
        matrix=PriorityMatrix(cells=cells, default=rules.priority.default),
        priority_rules=tuple(
            PriorityRule(r.name, r.when.conditions(), set_to=r.set_to, raise_by=r.raise_by, reason=r.reason)
            for r in rules.priority.rules
        ),
        queue_rules=tuple(
            QueueRule(r.name, r.when.conditions(), r.queue, r.reason, frozenset(map(fold, r.skills)), r.assign_to)
            for r in rules.queues.rules
        ),
        default_queue=rules.queues.default,
        criticality={fold(c): level for c, level in rules.components.items()},
        strategies=dict(rules.queues.assignment),
        timezone=rules.timezone,
    )
