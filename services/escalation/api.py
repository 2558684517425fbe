"""Escalation's HTTP API: the deadlines a ticket is on (the ticket query API aggregates it) and the SLA metrics."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from contracts.sla import Deadline as SlaDeadline
from runtime.http import people
from services.escalation.adapters.store import DeadlineStore
from services.escalation.clock import Clock
from services.escalation.domain.deadline import Deadline, DeadlineState
from services.escalation.domain.policy import EscalationPolicy
from services.escalation.sla_deadlines import ticket_deadlines as sla_deadlines_of


class DeadlineView(BaseModel):
    level: int = Field(description="The level the ticket is at while the deadline runs.")
    queue: str | None = Field(description="The ticket's queue at that level (null: not routed yet).")
    escalates_to: int | None = Field(description="The level the ticket moves to when the deadline passes.")
    due_at: datetime | None = Field(description="When the ticket escalates; null while the clock is paused.")
    state: Literal["pending", "paused", "fired"] = Field(
        description="pending: clock running; paused: waiting on the customer or a third party; fired: escalation sent."
    )
    policy: str | None = Field(description="The SLA policy whose first-response target the deadline counts.")
    priority: int
    business_seconds_used: float = Field(description="Business time used at this level before the current run.")


class TicketDeadlines(BaseModel):
    ticket_id: uuid.UUID
    number: str | None
    deadlines: list[DeadlineView]
    sla: list[SlaDeadline] = Field(
        default_factory=list,
        description="Every SLA deadline of the ticket (first response, escalation, next update, resolution), "
        "as published in sla.deadlines_changed.",
    )


def deadlines_router(store: DeadlineStore, policy: EscalationPolicy, clock: Clock) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["deadlines"], dependencies=[Depends(people(doing="read SLA deadlines"))])

    def view(deadline: Deadline) -> DeadlineView:
        to = policy.next_level(deadline.level)
        return DeadlineView(
            level=deadline.level,
            queue=deadline.queue,
            escalates_to=to.number if to else None,
            due_at=None if deadline.state is DeadlineState.PAUSED else deadline.due_at,
            state=deadline.state.value,  # type: ignore[arg-type]
            policy=deadline.policy,
            priority=deadline.priority,
            business_seconds_used=deadline.consumed_s,
        )

    @router.get("/tickets/{ticket_id}/deadlines", response_model=TicketDeadlines)
    async def ticket_deadlines(ticket_id: uuid.UUID) -> TicketDeadlines:
        """The ticket's running (pending), paused and sent (fired) escalation deadlines; empty when none."""
        found = await store.of_ticket(ticket_id)
        clock_row = await store.clock_of(ticket_id)
        return TicketDeadlines(
            ticket_id=ticket_id,
            number=found[0].number if found else (clock_row.number if clock_row else None),
            deadlines=[view(d) for d in found],
            sla=sla_deadlines_of(clock_row, policy, clock.now()) if clock_row else [],
        )

    @router.get("/sla/metrics", response_model=SlaMetrics, tags=["sla"])
    async def sla_metrics() -> SlaMetrics:
        """Time to first response and to resolution (count, mean) and breaches, by priority and queue.

        Counted from escalation's store: every replica answers the same, and a restart keeps them.
        """
        figures = await store.sla_figures()
        timings: dict[str, list[Timing]] = {"first_response": [], "resolution": []}
        for kind, priority, queue, count, mean in figures.timings:
            timings[kind].append(Timing(priority=priority, queue=queue, count=count, mean_s=mean))
        return SlaMetrics(
            first_response=timings["first_response"],
            resolution=timings["resolution"],
            breaches=[Breaches(priority=p, queue=q, target=t, count=n) for p, q, t, n in figures.breaches],
        )

    return router


class Timing(BaseModel):
    priority: int
    queue: str
    count: int
    mean_s: float = Field(description="Mean seconds, less the time the ticket waited on the customer or a third party.")


class Breaches(BaseModel):
    priority: int
    queue: str
    target: str = Field(description="The target breached: first_response, next_update or resolution.")
    count: int


class SlaMetrics(BaseModel):
    """Every figure since escalation's store began, ordered by priority and queue (and target)."""

    first_response: list[Timing]
    resolution: list[Timing]
    breaches: list[Breaches]
