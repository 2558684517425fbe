"""The agents file (``ROUTING_AGENTS_FILE``): who works which queues, with what skills and languages.

Read at start-up and written into routing's store; the API (``PUT
/v1/agents/{id}``) changes agents afterwards. An agent's availability in the
file is only where they start: a restart keeps the availability set through
the API. Every problem is reported at once as ``file:line: where: what``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.config_files import ConfigFileError, read
from services.routing.assignment import Agent
from services.routing.domain import fold

Name = Annotated[str, Field(min_length=1, max_length=100)]


class AgentsFileError(ConfigFileError):
    """The agents file cannot be used; the message names file, line and problem."""


class AgentProfile(BaseModel):
    """An agent as the file and the API write it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    skills: list[Name] = Field(default_factory=list)
    languages: list[Name] = Field(default_factory=list)
    level: int = Field(default=1, ge=1, le=9)
    queues: list[Name] = Field(default_factory=list)
    available: bool = True

    def agent(self, agent_id: str) -> Agent:
        return Agent(
            agent_id=agent_id,
            skills=frozenset(map(fold, self.skills)),
            languages=frozenset(map(fold, self.languages)),
            level=self.level,
            queues=frozenset(self.queues),
            available=self.available,
        )


class _FileAgent(AgentProfile):
    id: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\w][\w.@:-]*$")]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agents: list[_FileAgent] = Field(default_factory=list)


def load_agents(path: Path) -> list[Agent]:
    try:
        document = read(path)
    except ConfigFileError as exc:
        raise AgentsFileError(exc.problems) from None
    try:
        parsed = _File.model_validate(document.data or {})
    except ValidationError as exc:
        raise AgentsFileError(document.validation_problems(exc)) from None
    problems, first_at = [], {}
    for index, entry in enumerate(parsed.agents):
        first = first_at.setdefault(entry.id, index)
        if first != index:
            line = document.line_of(("agents", first, "id"))
            problems.append(
                document.problem(
                    ("agents", index, "id"), f"agents[{index}].id: {entry.id!r} is already the agent at line {line}"
                )
            )
    if problems:
        raise AgentsFileError(problems)
    return [entry.agent(entry.id) for entry in parsed.agents]
