"""``helpdesk merge``, ``link``, ``unlink`` and ``watch`` against the real ticket service."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpdesk_client.cli import app
from typer.testing import CliRunner, Result

from tests.support.ticket_service_http import TicketService


@pytest.fixture
def helpdesk(ticket_service: TicketService, tmp_path: Path):
    env = {
        "HELPDESK_URL": ticket_service.url,
        "HELPDESK_TOKEN": ticket_service.token("alice"),
        "XDG_CONFIG_HOME": str(tmp_path),
        "COLUMNS": "200",
    }

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=env)

    return run


def a_queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stdout}{result.stderr}"
    return result.stdout


def as_json(result: Result) -> Any:
    return json.loads(ok(result))


def test_merge_shows_the_merged_ticket_and_refuses_a_second_target(
    ticket_service: TicketService,
    helpdesk,
) -> None:
    duplicate, original, third = ticket_service.open_tickets(3, queue=a_queue())
    said = ok(helpdesk("merge", duplicate, original, "--reason", "same outage"))
    assert f"merged into {original}" in said and "merged" in said
    shown = as_json(helpdesk("tickets", "show", duplicate, "--json"))
    assert (shown["status"], shown["merged_into"]["number"]) == ("merged", original)
    assert f"merged into {original}" in ok(helpdesk("tickets", "show", duplicate))
    refused = helpdesk("merge", duplicate, third, "--reason", "elsewhere")
    assert refused.exit_code == 6 and "ticket_already_merged" in refused.stderr


def test_link_and_unlink_in_tables_and_json(ticket_service: TicketService, helpdesk) -> None:
    parent, child = ticket_service.open_tickets(2, queue=a_queue())
    assert f"linked (parent_of {child})" in ok(helpdesk("link", parent, child, "--kind", "parent_of"))
    child_view = as_json(helpdesk("tickets", "show", child, "--json"))
    assert [(link["kind"], link["number"]) for link in child_view["links"]] == [("child_of", parent)]
    assert f"parent_of {child}" in ok(helpdesk("tickets", "show", parent))
    unlinked = as_json(helpdesk("unlink", parent, child, "--kind", "parent_of", "--json"))
    assert unlinked["links"] == []
    assert helpdesk("link", parent, child, "--kind", "cousin_of").exit_code == 2


def test_watch_prints_a_queues_events_as_lines_or_json(ticket_service: TicketService, helpdesk) -> None:
    queue = a_queue()
    number = ticket_service.open_ticket(queue=queue, subject="Projector dead")
    lines = [
        json.loads(line) for line in ok(helpdesk("watch", queue, "--after", "0", "--count", "3", "--json")).splitlines()
    ]
    assert [(e["type"], e["data"]["data"]["number"]) for e in lines] == [
        ("ticket.opened", number),
        ("ticket.prioritised", number),
        ("ticket.routed", number),
    ]
    assert all(e["id"] for e in lines)
    table = ok(helpdesk("watch", queue, "--after", "0", "--count", "1"))
    assert number in table and "opened" in table and "Projector dead" in table
