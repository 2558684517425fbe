"""Giving a ticket to an agent of its queue: pull, round-robin or least-loaded.

Pure: no I/O. ``pull`` (the default) gives the ticket to nobody: agents take
the next off the queue. The other strategies choose among the agents who are
available, members of the queue, have every skill the queue rule requires and
speak the ticket's language (when it has one):

* ``round_robin`` takes the next such agent after the last one given a ticket
  of this queue (agents ordered by id), so agents who come and go simply join
  or leave the circle;
* ``least_loaded`` takes the agent holding the fewest open tickets (assigned
  or claimed, not resolved, closed or merged); a tie is broken by the ticket's id, so equally
  loaded agents share tickets evenly and a redelivered event chooses the same.

A queue rule may also name the agent (``assign_to``): the ticket goes to them
directly, whatever the queue's strategy, skills or language, as long as they
are available; otherwise the queue's strategy decides, and the reason says why.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from services.routing.domain import speaks

Strategy = Literal["pull", "round_robin", "least_loaded"]
Given = Literal["round_robin", "least_loaded", "direct"]  # how an assignment was made


@dataclass(frozen=True)
class Agent:
    agent_id: str
    skills: frozenset[str] = frozenset()  # case-folded
    languages: frozenset[str] = frozenset()  # case-folded
    level: int = 1
    queues: frozenset[str] = frozenset()
    available: bool = True


@dataclass(frozen=True)
class Assignment:
    agent_id: str
    strategy: Given
    reason: str


@dataclass(frozen=True)
class Unassigned:
    """No assignment: the ticket waits in its queue for an agent to pick it."""

    reason: str


@dataclass
class Roster:
    """The agents, who holds how many open tickets, and each round-robin queue's last pick."""

    agents: Mapping[str, Agent]
    loads: dict[str, int] = field(default_factory=dict)
    last_given: dict[str, str] = field(default_factory=dict)  # queue -> agent id

    def __post_init__(self) -> None:
        # Members of each queue, by id: an assignment looks at its queue's agents only.
        self._members: dict[str, list[Agent]] = {}
        for agent in sorted(self.agents.values(), key=lambda a: a.agent_id):
            for queue in agent.queues:
                self._members.setdefault(queue, []).append(agent)

    def eligible(self, queue: str, skills: frozenset[str], language: str | None) -> list[Agent]:
        return [
            a
            for a in self._members.get(queue, ())
            if a.available and skills <= a.skills and (language is None or speaks(a.languages, language))
        ]

    def hold(self, agent_id: str | None, change: int) -> None:
        if agent_id is not None:
            self.loads[agent_id] = max(0, self.loads.get(agent_id, 0) + change)


def assign_named(
    roster: Roster,
    named: str,
    rule: str,
    strategy: str,
    ticket_id: uuid.UUID,
    queue: str,
    skills: frozenset[str] = frozenset(),
    language: str | None = None,
) -> Assignment | Unassigned:
    """The agent queue rule ``rule`` names gets the ticket; if they cannot take it, the queue's strategy decides."""
    agent = roster.agents.get(named)
    if agent is not None and agent.available:
        return Assignment(named, "direct", f"queue rule {rule!r} gives it to {named}")
    why = "not available" if agent is not None else "not an agent routing knows"
    outcome = assign(roster, strategy, ticket_id, queue, skills, language)
    passed_over = f"{named}, named by queue rule {rule!r}, is {why}; "
    if isinstance(outcome, Assignment):
        return Assignment(outcome.agent_id, outcome.strategy, passed_over + outcome.reason)
    return Unassigned(passed_over + outcome.reason)


def assign(
    roster: Roster,
    strategy: str,
    ticket_id: uuid.UUID,
    queue: str,
    skills: frozenset[str] = frozenset(),
    language: str | None = None,
) -> Assignment | Unassigned:
    """Who gets the ticket under the queue's ``strategy``; records the pick on ``roster``."""
    if strategy == "pull":
        return Unassigned(f"queue {queue!r} is pull: agents take the next ticket")
    candidates = roster.eligible(queue, skills, language)
    if not candidates:
        return Unassigned(f"no available agent of {queue!r}{_needs(skills, language)}: left in the queue")
    if strategy == "round_robin":
        agent = _next_after(candidates, roster.last_given.get(queue))
        reason = f"round robin among {len(candidates)} agents of {queue!r}{_needs(skills, language)}"
    else:
        fewest = min(roster.loads.get(a.agent_id, 0) for a in candidates)
        least = [a for a in candidates if roster.loads.get(a.agent_id, 0) == fewest]
        agent = least[ticket_id.int % len(least)]
        reason = f"least loaded ({fewest} open) of {len(candidates)} agents of {queue!r}{_needs(skills, language)}"
    roster.last_given[queue] = agent.agent_id
    return Assignment(agent.agent_id, "least_loaded" if strategy == "least_loaded" else "round_robin", reason)


def _next_after(candidates: list[Agent], last: str | None) -> Agent:
    if last is not None:
        for agent in candidates:
            if agent.agent_id > last:
                return agent
    return candidates[0]


def _needs(skills: Iterable[str], language: str | None) -> str:
    parts = []
    if skills:
        parts.append("skills " + ", ".join(sorted(skills)))
    if language:
        parts.append(f"language {language}")
    return " with " + " and ".join(parts) if parts else ""
