"""Escalation's HTTP API: the deadlines a ticket is on (the ticket query API aggregates it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.escalation.adapters.store import DeadlineStore
from services.escalation.domain import Deadline, EscalationPolicy


class DeadlineView(BaseModel):
    level: int = Field(description="The level the ticket is at while the deadline runs.")
    queue: str | None = Field(description="The ticket's queue at that level (null: not routed yet).")
    escalates_to: int | None = Field(description="The level the ticket moves to when the deadline passes.")
    due_at: datetime
    state: Literal["pending", "fired"] = Field(description="pending: clock running; fired: escalation sent.")


class TicketDeadlines(BaseModel):
    ticket_id: uuid.UUID
    number: str | None
    deadlines: list[DeadlineView]


def deadlines_router(store: DeadlineStore, policy: EscalationPolicy) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["deadlines"])

    def view(deadline: Deadline) -> DeadlineView:
        to = policy.next_level(deadline.level)
        return DeadlineView(
            level=deadline.level,
            queue=deadline.queue,
            escalates_to=to.number if to else None,
            due_at=deadline.due_at,
            state=deadline.state.value,  # type: ignore[arg-type]
        )

    @router.get("/tickets/{ticket_id}/deadlines", response_model=TicketDeadlines)
    async def ticket_deadlines(ticket_id: uuid.UUID) -> TicketDeadlines:
        """The ticket's running (pending) and sent (fired) escalation deadlines; empty when none."""
        found = await store.of_ticket(ticket_id)
        return TicketDeadlines(
            ticket_id=ticket_id,
            number=found[0].number if found else None,
            deadlines=[view(d) for d in found],
        )

    return router
