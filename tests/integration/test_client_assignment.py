"""A team lead gives tickets to named agents with the Python client (sync and async) and ``helpdesk assign``."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from helpdesk_client import AsyncHelpdeskClient, Forbidden, HelpdeskClient

from tests.integration.test_cli_workday import Agent, ok
from tests.support.ticket_service_http import TicketService


def a_queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


def test_a_lead_assigns_with_the_client_and_an_agent_is_refused(ticket_service: TicketService) -> None:
    number = ticket_service.open_ticket(queue=a_queue())
    with HelpdeskClient(ticket_service.url, token=ticket_service.token("alice")) as alice:
        alice.claim(number)
        with pytest.raises(Forbidden):
            alice.assign(number, "bob")
    with HelpdeskClient(ticket_service.url, token=ticket_service.token("lena", ("lead",))) as lena:
        given = lena.assign(number, "bob", "alice is on leave", expected_version=4)
    assert (given.assignee, given.history[-1].type) == ("bob", "ticket.assigned")
    assert given.history[-1].data["assigned_by"] == "lena"


def test_a_lead_assigns_with_the_async_client(ticket_service: TicketService) -> None:
    number = ticket_service.open_ticket(queue=a_queue())

    async def assign() -> str | None:
        async with AsyncHelpdeskClient(ticket_service.url, token=ticket_service.token("lena", ("lead",))) as lena:
            return (await lena.assign(number, "net-2")).assignee

    assert asyncio.run(assign()) == "net-2"


def test_helpdesk_assign_gives_a_ticket_to_an_agent_and_an_agent_gets_exit_5(
    ticket_service: TicketService, tmp_path: Path
) -> None:
    number = ticket_service.open_ticket(queue=a_queue())
    lena = Agent(ticket_service, tmp_path, ticket_service.token("lena", ("lead",)))
    said = ok(lena("assign", number, "alice", "--reason", "knows the VPN"))
    assert number in said and "assigned to alice" in said
    assert lena.json("tickets", "show", number)["assignee"] == "alice"
    refused = Agent(ticket_service, tmp_path, ticket_service.token("alice"))("assign", number, "bob")
    assert refused.exit_code == 5, refused.output
