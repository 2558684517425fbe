"""SLA deadlines, as the escalation service computes them, for the ticket query API to show.

Escalation publishes the complete set of a ticket's deadlines whenever one of
them changes (set, paused, resumed, met, breached), so the latest message per
ticket is the whole truth and the topic can be compacted.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from contracts.envelope import Envelope, Payload

DeadlineKind = Literal["first_response", "next_update", "resolution", "escalation"]
DeadlineState = Literal["running", "paused", "met", "breached", "cancelled"]


class Deadline(Payload):
    kind: DeadlineKind
    level: int | None = Field(default=None, description="For escalation deadlines: the level it escalates to.")
    due_at: AwareDatetime | None = Field(description="None while paused (the remaining time is kept).")
    remaining_s: float | None = Field(default=None, description="Business seconds left when paused.")
    warn_at: AwareDatetime | None = None
    state: DeadlineState
    met_at: AwareDatetime | None = None
    breached_at: AwareDatetime | None = None


class SlaDeadlinesChangedData(Payload):
    number: str
    policy: str = Field(description="Name of the SLA policy that applies.")
    calendar: str = Field(description="Name of the business-hours calendar the deadlines are counted in.")
    deadlines: list[Deadline]


class SlaDeadlinesChanged(Envelope[SlaDeadlinesChangedData]):
    type: Literal["sla.deadlines_changed"] = "sla.deadlines_changed"
    schema_version: Literal[1] = 1


SLA_MESSAGES: tuple[type[Envelope], ...] = (SlaDeadlinesChanged,)
