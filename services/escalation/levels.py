"""Reading the escalation levels file, with errors that name the file, line and problem.

The file is the team lead's: it is checked once at start-up, and a mistake
stops the service with a message saying where it is, rather than surfacing
later as a ticket escalated to nowhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from runtime.settings import ConfigError
from services.escalation.domain.policy import Contact, Level


class LevelsFileError(ConfigError):
    """The levels file is missing or wrong; the message names the file and line."""


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_NEEDS = {"sms": ("phone",), "phone": ("phone",), "pager": ("id", "phone"), "email": ("email",)}


class _ContactEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["email", "sms", "pager", "phone", "alarm", "flag"]
    phone: str | None = None
    id: str | None = Field(default=None, min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=320)

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not _E164.match(value):
            raise ValueError(f"{value!r} is not a phone number in international form (+4930...)")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> _ContactEntry:
        needed = _NEEDS.get(self.method, ())
        if needed and not any(getattr(self, field) for field in needed):
            raise ValueError(f"a {self.method} contact needs {' or '.join(needed)}")
        return self


class _LevelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=40)
    queue: str | None = Field(default=None, min_length=1, max_length=100)
    email: str = Field(max_length=320)
    notify: list[_ContactEntry] = Field(default_factory=list)
    agent: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("email")
    @classmethod
    def _looks_like_an_address(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value


def load_levels(path: Path) -> tuple[Level, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LevelsFileError(f"{path}: cannot read the escalation levels file: {exc.strerror}") from None
    return parse_levels(text, str(path))


def parse_levels(text: str, source: str) -> tuple[Level, ...]:
    """The levels ``text`` describes, in order; ``source`` names the file in errors."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise LevelsFileError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("levels"), list) or not data["levels"]:
        raise LevelsFileError(f"{source}:1: expected a mapping with a non-empty list 'levels'")
    unknown = sorted(set(data) - {"levels"})
    if unknown:
        raise LevelsFileError(f"{source}:1: unknown key(s) {', '.join(map(repr, unknown))}; only 'levels' is allowed")
    items = _item_nodes(node)
    levels = [_level(entry, source, line) for entry, line in zip(data["levels"], items, strict=True)]
    _check_order(levels, items, source)
    return tuple(levels)


def _item_nodes(root: yaml.Node) -> list[int]:
    """1-based line of each entry under 'levels', for error messages."""
    for key, value in root.value:
        if key.value == "levels":
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _level(entry: Any, source: str, line: int) -> Level:
    try:
        parsed = _LevelEntry.model_validate(entry)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"]) or "entry"
        problem = err["msg"].removeprefix("Value error, ")
        raise LevelsFileError(f"{source}:{line}: level entry, {field}: {problem}") from None
    contacts = tuple(Contact(c.method, c.phone, c.id, c.email) for c in parsed.notify)
    return Level(number=parsed.level, name=parsed.name, queue=parsed.queue, email=parsed.email, notify=contacts,
                 agent=parsed.agent)


def _check_order(levels: list[Level], lines: list[int], source: str) -> None:
    names: set[str] = set()
    queues: set[str] = set()
    for expected, (level, line) in enumerate(zip(levels, lines, strict=True), start=1):
        if level.number != expected:
            raise LevelsFileError(
                f"{source}:{line}: expected level {expected} here, found level {level.number} "
                "(levels are numbered 1, 2, 3... in order)"
            )
        if level.number > 1 and level.queue is None and level.agent is None:
            raise LevelsFileError(
                f"{source}:{line}: level {level.number} needs a queue or an on-call agent "
                "(only level 1 uses the routed queue)"
            )
        if level.name in names:
            raise LevelsFileError(f"{source}:{line}: level name {level.name!r} is used twice")
        if level.queue is not None and level.queue in queues:
            raise LevelsFileError(f"{source}:{line}: queue {level.queue!r} is used by two levels")
        names.add(level.name)
        if level.queue is not None:
            queues.add(level.queue)
