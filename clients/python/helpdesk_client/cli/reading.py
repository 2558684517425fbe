"""Reading: tickets listed, searched and shown; queues and their lines; SLA deadlines."""

from __future__ import annotations

import itertools
from typing import Annotated, Any

import typer

from helpdesk_client.cli import output
from helpdesk_client.cli.app import app, tickets_app
from helpdesk_client.cli.context import Json, Ref, fail, handled, instant, session
from helpdesk_client.cli.failures import ExitCode

Status = Annotated[
    str | None, typer.Option(help="open, in_progress, waiting_on_customer, waiting_on_third_party, resolved, closed.")
]
Limit = Annotated[int, typer.Option("--limit", "-n", min=0, help="Show at most this many (0: all of them).")]


@tickets_app.command("list")
@handled
def list_tickets(
    ctx: typer.Context,
    status: Status = None,
    queue: Annotated[str | None, typer.Option(help="Tickets in this queue.")] = None,
    priority: Annotated[int | None, typer.Option(min=1, max=5, help="Priority 1 (most urgent) to 5.")] = None,
    assignee: Annotated[str | None, typer.Option(help="Owned by this agent.")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Owned by me (the token's agent).")] = False,
    customer: Annotated[str | None, typer.Option(help="The customer's directory id.")] = None,
    channel: Annotated[str | None, typer.Option(help="email, phone, web, chat...")] = None,
    opened_after: Annotated[str | None, typer.Option(help="Opened at or after (ISO 8601; UTC if no offset).")] = None,
    opened_before: Annotated[str | None, typer.Option(help="Opened before.")] = None,
    text: Annotated[str | None, typer.Option("--text", "-q", help="Containing this text.")] = None,
    limit: Limit = 50,
    as_json: Json = False,
) -> None:
    """Tickets, newest first; every option narrows the list."""
    if mine:
        assignee = session(ctx).agent()
        if assignee is None:
            fail(ExitCode.USAGE, "--mine needs an agent's token (an API key names no agent)")
    filters = {
        "status": status,
        "queue": queue,
        "priority": priority,
        "assignee": assignee,
        "customer": customer,
        "channel": channel,
        "opened_after": instant(opened_after),
        "opened_before": instant(opened_before),
        "q": text,
    }
    show_tickets(ctx, filters, limit, as_json)


@tickets_app.command("search")
@handled
def search(
    ctx: typer.Context,
    text: Annotated[
        str, typer.Argument(metavar="TEXT", help="Words searched in subjects, descriptions and public notes.")
    ],
    status: Status = None,
    queue: Annotated[str | None, typer.Option(help="Only in this queue.")] = None,
    limit: Limit = 50,
    as_json: Json = False,
) -> None:
    """Tickets containing the text, newest first."""
    show_tickets(ctx, {"q": text, "status": status, "queue": queue}, limit, as_json)


def show_tickets(ctx: typer.Context, filters: dict[str, Any], limit: int, as_json: bool) -> None:
    with session(ctx).client() as client:
        found = client.list_tickets(page_size=min(limit or 500, 500), **filters)
        shown = list(itertools.islice(found, limit) if limit else found)
    if as_json:
        output.as_json(shown)
    else:
        output.tickets_table(shown)


@tickets_app.command("show")
@handled
def show(
    ctx: typer.Context,
    ref: Ref,
    as_of: Annotated[str | None, typer.Option("--as-of", help="As it stood at this moment (ISO 8601).")] = None,
    as_json: Json = False,
) -> None:
    """A ticket with its timeline."""
    with session(ctx).client() as client:
        ticket = client.get_ticket(ref, as_of=instant(as_of))
    output.as_json(ticket) if as_json else output.ticket_panel(ticket)


@app.command(rich_help_panel="Reading")
@handled
def queues(ctx: typer.Context, as_json: Json = False) -> None:
    """Every queue: how many tickets wait in it and how long the oldest has waited."""
    with session(ctx).client() as client:
        found = client.queues()
    output.as_json(found) if as_json else output.queues_table(found)


@app.command(rich_help_panel="Reading")
@handled
def line(
    ctx: typer.Context,
    queue: Annotated[str, typer.Argument(metavar="QUEUE", help="The queue.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500)] = 50,
    as_json: Json = False,
) -> None:
    """A queue's line: its waiting tickets in the order `next` takes them, and those escalated to it that
    someone already owns (status and assignee say so; `next` takes only the waiting ones)."""
    with session(ctx).client() as client:
        found = client.queue_line(queue, limit)
    output.as_json(found) if as_json else output.tickets_table(found, title=f"The line of {queue}")


@app.command(rich_help_panel="Reading")
@handled
def deadlines(ctx: typer.Context, ref: Ref, as_json: Json = False) -> None:
    """A ticket's SLA deadlines."""
    with session(ctx).client() as client:
        found = client.deadlines(ref)
    output.as_json(found) if as_json else output.deadlines_table(found)
