"""The recipients file: how each agent and level is notified, and the outbound webhooks.

Read once at start-up; a mistake stops the service with ``file:line: problem``.
Secrets (webhook HMAC keys) are not in the file: it names the environment
variable that holds each one. A webhook's URL must be https (the event carries
the customer's details, and its signature proves only who sent it, not that
nobody read it), unless the file says ``allow_http: true`` for that webhook
(a receiver inside the cluster, on a network nobody else is on).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from runtime.config_files import ConfigFileError, read
from runtime.settings import ConfigError

AgentMethod = Literal["email", "sms", "phone", "pager", "alarm", "flag"]
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class RecipientsFileError(ConfigError):
    """The recipients file is missing or wrong; the message names the file and line."""


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: AgentMethod
    to: str = Field(default="", max_length=320)

    @model_validator(mode="after")
    def _address_fits_method(self) -> Route:
        if self.method == "email" and not _EMAIL.fullmatch(self.to):
            raise ValueError(f"{self.to!r} is not an e-mail address")
        if self.method in ("sms", "phone"):
            try:
                valid = phonenumbers.is_possible_number(phonenumbers.parse(self.to, None))
            except phonenumbers.NumberParseException:
                valid = False
            if not valid or not self.to.startswith("+"):
                raise ValueError(f"{self.to!r} is not a phone number in E.164 form (+441610000002)")
        if self.method == "pager" and not self.to:
            raise ValueError("a pager route needs 'to': the PagerDuty routing key")
        return self


class _Level(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: int = Field(ge=1)
    name: str | None = Field(default=None, max_length=40)
    notify: list[Route] = Field(default_factory=list)


class _Agent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200)
    notify: list[Route] = Field(default_factory=list)


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    url: str = Field(pattern=r"^https?://")
    secret_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    events: tuple[str, ...] = Field(min_length=1)
    allow_http: bool = Field(default=False, strict=True)  # plain http allowed for this receiver

    @property
    def plain_http(self) -> bool:
        return self.url.startswith("http://")


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    levels: list[_Level] = Field(default_factory=list)
    agents: list[_Agent] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)


@dataclass(frozen=True)
class Recipients:
    levels: dict[str, tuple[Route, ...]]  # by number ("2") and by name ("L2")
    agents: dict[str, tuple[Route, ...]]
    webhooks: tuple[Webhook, ...]
    secrets: dict[str, bytes]  # webhook name -> HMAC key

    @classmethod
    def none(cls) -> Recipients:
        return cls({}, {}, (), {})

    def routes(self, kind: str, who: str | None) -> tuple[Route, ...]:
        """The routes of an agent or a level (by number or name); none when unknown."""
        table = self.agents if kind == "agent" else self.levels if kind == "level" else {}
        return table.get(who or "", ())

    def address(self, kind: str, who: str | None, method: str) -> str | None:
        """Where a request by ``method`` to this agent or level goes, from the file."""
        for route in self.routes(kind, who):
            if route.method == method:
                return route.to or None
        return None


def load_recipients(path: Path, environ: dict[str, str] | None = None) -> Recipients:
    env = os.environ if environ is None else environ
    try:
        document = read(path)
    except ConfigFileError as exc:
        raise RecipientsFileError("\n".join(exc.problems)) from None
    try:
        parsed = _File.model_validate(document.data or {})
    except ValidationError as exc:
        raise RecipientsFileError("\n".join(document.validation_problems(exc))) from None
    levels: dict[str, tuple[Route, ...]] = {}
    for entry in parsed.levels:
        levels[str(entry.level)] = tuple(entry.notify)
        if entry.name:
            levels[entry.name] = tuple(entry.notify)
    secrets, problems = {}, []
    for n, hook in enumerate(parsed.webhooks):
        if hook.plain_http and not hook.allow_http:
            problems.append(document.problem(
                ("webhooks", n, "url"),
                f"webhooks[{n}].url: webhook {hook.name}: {hook.url} is plain http; use https, or set "
                "'allow_http: true' on this webhook for a receiver inside the cluster",
            ))
        secret = env.get(hook.secret_env, "")
        if not secret:
            problems.append(document.problem(("webhooks", n, "secret_env"),
                                             f"webhook {hook.name}: {hook.secret_env} is not set"))
        secrets[hook.name] = secret.encode()
    if problems:
        raise RecipientsFileError("\n".join(problems))
    agents = {a.id: tuple(a.notify) for a in parsed.agents}
    return Recipients(levels, agents, tuple(parsed.webhooks), secrets)
