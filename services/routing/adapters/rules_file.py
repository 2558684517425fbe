"""The routing rules file (``rules.yaml``), read and validated at start-up.

The format is documented for team leads in docs/routing.md. Every problem in
the file is reported at once, each as ``file:line: where: what``; the service
does not start with a file that has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts.incidents import Channel
from runtime.config_files import ConfigFileError, MarkedDocument, read
from services.routing.domain import (
    LEVELS,
    Conditions,
    PriorityMatrix,
    PriorityRule,
    QueueRule,
    RoutingPolicy,
    keyword,
)

Priority = Annotated[int, Field(ge=1, le=5, strict=True)]
RuleName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w][\w .:/-]*$")]
QueueName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w][\w .:/-]*$")]
RESERVED_NAMES = {"default", "matrix", "manual"}  # what a decision names when no rule fired, or an agent


class RulesFileError(ConfigFileError):
    """The rules file cannot be used; the message names file, line and problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _When(_Strict):
    keywords: list[str] = Field(default_factory=list)
    components: list[str] = Field(default_factory=list)
    departments: list[str] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    vip: Annotated[bool | None, Field(strict=True)] = None

    @field_validator("keywords")
    @classmethod
    def _keywords_have_words(cls, values: list[str]) -> list[str]:
        for value in values:
            if not keyword(value):
                raise ValueError(f"keyword {value!r} has no letters or digits; keywords match whole words")
        return values

    @model_validator(mode="after")
    def _matches_something(self) -> _When:
        if not (self.keywords or self.components or self.departments or self.channels or self.vip is not None):
            raise ValueError("'when' needs at least one of keywords, components, departments, channels, vip")
        return self

    def conditions(self) -> Conditions:
        return Conditions.of(
            keywords=self.keywords,
            components=self.components,
            departments=self.departments,
            channels=[c.value for c in self.channels],
            vip=self.vip,
        )


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
    queue: QueueName


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
    rules: list[_QueueRule] = Field(default_factory=list)


class _File(_Strict):
    version: Literal[1] = 1
    priority: _PrioritySection
    queues: _QueueSection = Field(default_factory=_QueueSection)


def load_rules(path: Path) -> RoutingPolicy:
    """The routing policy in ``path``, or :class:`RulesFileError` listing every problem."""
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


def _policy(rules: _File) -> RoutingPolicy:
    m = rules.priority.matrix
    cells = {(impact, urgency): getattr(getattr(m, impact), urgency) for impact in LEVELS for urgency in LEVELS}
    return RoutingPolicy(
        matrix=PriorityMatrix(cells=cells, default=rules.priority.default),
        priority_rules=tuple(
            PriorityRule(r.name, r.when.conditions(), set_to=r.set_to, raise_by=r.raise_by, reason=r.reason)
            for r in rules.priority.rules
        ),
        queue_rules=tuple(QueueRule(r.name, r.when.conditions(), r.queue, r.reason) for r in rules.queues.rules),
        default_queue=rules.queues.default,
    )
