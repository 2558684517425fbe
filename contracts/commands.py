"""Commands other services send to the ticket service.

A command's ``event_id`` is its command id: the ticket service applies a
command id at most once, so a sender may (and after a crash will) send it
again. Senders derive the id from what caused the command, so a redelivered
cause yields the same command id.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from contracts.envelope import Envelope, Payload
from contracts.tickets import Priority


class RouteTicketData(Payload):
    priority: Priority
    priority_rule: str
    priority_reason: str
    queue: str = Field(min_length=1, max_length=100)
    queue_rule: str
    queue_reason: str


class RouteTicket(Envelope[RouteTicketData]):
    """Routing decided the ticket's priority and queue."""

    type: Literal["command.route_ticket"] = "command.route_ticket"
    schema_version: Literal[1] = 1


class EscalateTicketData(Payload):
    level: int = Field(ge=2, description="The level to escalate to.")
    queue: str = Field(min_length=1, max_length=100)
    reason: str
    deadline: AwareDatetime = Field(description="The deadline whose breach caused the escalation.")
    targets: list[Literal["first_response", "next_update", "resolution"]] = Field(
        default_factory=lambda: ["first_response"],
        min_length=1,
        description=(
            "The SLA targets whose breach caused it. Only a first-response breach is void once the ticket is "
            "claimed (an agent answered meanwhile); a late update or resolution escalates an owned ticket too."
        ),
    )


class EscalateTicket(Envelope[EscalateTicketData]):
    """Escalation found the ticket past a deadline and moves it up a level."""

    type: Literal["command.escalate_ticket"] = "command.escalate_ticket"
    schema_version: Literal[1] = 1


AgentId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[\w][\w.@:-]*$",
        description="An agent's id as agents' tokens and routing's agents file name them (e.g. 'alice', 'net-2').",
    ),
]
"""What an agent id may look like: a word character first, then word characters, '.', '@', ':' or '-'."""


class AssignTicketData(Payload):
    agent_id: AgentId
    strategy: Literal["round_robin", "least_loaded", "direct"]
    reason: str


class AssignTicket(Envelope[AssignTicketData]):
    """Give the ticket to an agent: routing (round robin, least loaded), or escalation (a level's on-call agent)."""

    type: Literal["command.assign_ticket"] = "command.assign_ticket"
    schema_version: Literal[1] = 1


class FlagTicketData(Payload):
    flag: str = Field(min_length=1, max_length=50)
    reason: str
    raised_by: str


class FlagTicket(Envelope[FlagTicketData]):
    """Raise a flag on the ticket (a notification method of its own: agents see it on the ticket)."""

    type: Literal["command.flag_ticket"] = "command.flag_ticket"
    schema_version: Literal[1] = 1


TICKET_COMMANDS: tuple[type[Envelope], ...] = (RouteTicket, EscalateTicket, AssignTicket, FlagTicket)
