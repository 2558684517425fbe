"""Routing's HTTP API: why a ticket got its priority and queue, the rules' status, the agents."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from runtime.http import people
from services.routing.adapters.agents_file import AgentProfile
from services.routing.adapters.store import RoutingStore, agent_row
from services.routing.reload import RulesInForce


def routing_router(store: RoutingStore, rules: RulesInForce) -> APIRouter:
    # Routing's decisions and the agents are the desk's inner workings: agents read them, leads change them.
    router = APIRouter(prefix="/v1", tags=["routing"], dependencies=[Depends(people(doing="read routing's data"))])

    @router.get("/rules/status")
    async def rules_status() -> dict[str, Any]:
        """The rules in force, and the errors of the file on disk if it was rejected."""
        return rules.status()

    @router.get("/tickets/{ticket_id}/explanation")
    async def explanation(ticket_id: uuid.UUID) -> dict[str, Any]:
        """Every decision routing made for the ticket, oldest first, with the rules that matched in order."""
        found = await store.explanation(ticket_id)
        if found is None:
            raise HTTPException(404, f"routing knows no ticket {ticket_id}")
        view, decisions = found
        return {
            "ticket_id": str(view.ticket_id),
            "number": view.number,
            "priority": view.priority,
            "priority_set_by": view.priority_by,
            "priority_override": view.priority_note or None,
            "queue": view.queue,
            "queue_set_by": view.queue_by,
            "held_by": view.holder if view.open else None,
            "open": view.open,
            "level": view.level,
            "decisions": decisions,
        }

    @router.get("/agents")
    async def list_agents() -> list[dict[str, Any]]:
        """Every agent, with the open tickets each holds."""
        return [{**agent_row(agent), "open_tickets": load} for agent, load in await store.agents_with_loads()]

    @router.get("/agents/{agent_id}")
    async def get_agent(agent_id: str) -> dict[str, Any]:
        found = await store.agent(agent_id)
        if found is None:
            raise HTTPException(404, f"no agent {agent_id!r}")
        agent, load = found
        return {**agent_row(agent), "open_tickets": load}

    @router.put("/agents/{agent_id}", dependencies=[Depends(people(lead=True, doing="change agents"))])
    async def put_agent(agent_id: str, profile: AgentProfile) -> dict[str, Any]:
        """Create or replace the agent (skills, languages, level, queues, availability)."""
        if not agent_id.strip() or len(agent_id) > 200:
            raise HTTPException(422, "an agent id has 1 to 200 characters")
        await store.put_agents([profile.agent(agent_id)])
        return await get_agent(agent_id)

    return router
