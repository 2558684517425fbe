"""Working a ticket: take, claim, assign, note, status, priority, queue, resolve, close, reopen, merge, link."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, cast

import click
import typer

from helpdesk_client import calls
from helpdesk_client.cli import output
from helpdesk_client.cli.app import app
from helpdesk_client.cli.context import Expect, Json, Reason, Ref, fail, handled, session
from helpdesk_client.cli.failures import ExitCode
from helpdesk_client.client import HelpdeskClient
from helpdesk_client.models import TicketDetail


@app.command("next", rich_help_panel="Working a ticket")
@handled
def take_next(
    ctx: typer.Context,
    queue: Annotated[str, typer.Argument(metavar="QUEUE", help="The queue to take from.")],
    as_json: Json = False,
) -> None:
    """Take (claim) the ticket at the head of a queue's line; says so when nobody is waiting."""
    with session(ctx).client() as client:
        ticket = client.take_next(queue)
    if as_json:
        output.as_json(ticket)
    elif ticket is None:
        output.console.print(f"Nobody is waiting in {output.escape(queue)}.")
    else:
        output.ticket_panel(ticket)


def write(ctx: typer.Context, as_json: bool, what: str, change: Callable[[HelpdeskClient], TicketDetail]) -> None:
    with session(ctx).client() as client:
        ticket = change(client)
    output.as_json(ticket) if as_json else output.changed(ticket, what)


@app.command(rich_help_panel="Working a ticket")
@handled
def claim(ctx: typer.Context, ref: Ref, expect_version: Expect = None, as_json: Json = False) -> None:
    """Take a ticket: you become its owner."""
    write(ctx, as_json, "claimed", lambda c: c.claim(ref, expected_version=expect_version))


@app.command(rich_help_panel="Working a ticket")
@handled
def release(ctx: typer.Context, ref: Ref, expect_version: Expect = None, as_json: Json = False) -> None:
    """Put a ticket back in its queue, unowned."""
    write(ctx, as_json, "released", lambda c: c.release(ref, expected_version=expect_version))


@app.command(rich_help_panel="Working a ticket")
@handled
def assign(
    ctx: typer.Context,
    ref: Ref,
    agent: Annotated[str, typer.Argument(metavar="AGENT", help="The agent's id, e.g. alice.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (recorded on the ticket).")] = "",
    expect_version: Expect = None,
    as_json: Json = False,
) -> None:
    """Give a ticket to an agent (team leads), taking it from its owner if it has one."""
    write(ctx, as_json, f"assigned to {agent}", lambda c: c.assign(ref, agent, reason, expected_version=expect_version))


@app.command(rich_help_panel="Working a ticket")
@handled
def note(
    ctx: typer.Context,
    ref: Ref,
    text: Annotated[
        str | None, typer.Argument(metavar="TEXT", help="The note; '-' or --stdin reads it, none opens $EDITOR.")
    ] = None,
    public: Annotated[bool, typer.Option("--public", help="E-mail it to the customer (default: internal).")] = False,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the note from standard input.")] = False,
    expect_version: Expect = None,
    as_json: Json = False,
) -> None:
    """Add a note to a ticket: internal (only agents see it) or --public."""
    body = written(text, stdin, "note")
    write(ctx, as_json, "noted", lambda c: c.add_note(ref, body, public, expected_version=expect_version))


def written(text: str | None, stdin: bool, what: str) -> str:
    """Text from the argument, stdin, or the user's editor (lines starting with # dropped)."""
    if stdin or text == "-":
        text = sys.stdin.read()
    elif text is None:
        edited = click.edit(f"\n# Write the {what} above. Lines starting with '#' are left out.\n")
        text = "\n".join(line for line in (edited or "").splitlines() if not line.startswith("#"))
    if not text.strip():
        fail(ExitCode.USAGE, f"empty {what}: nothing was changed")
    return text.strip()


@app.command(rich_help_panel="Working a ticket")
@handled
def status(
    ctx: typer.Context,
    ref: Ref,
    new_status: Annotated[
        str, typer.Argument(metavar="STATUS", help="in_progress, waiting_on_customer or waiting_on_third_party.")
    ],
    expect_version: Expect = None,
    as_json: Json = False,
) -> None:
    """Say what a ticket waits for (waiting statuses pause its SLA clocks)."""
    if new_status not in calls.STATUSES:
        raise typer.BadParameter(f"must be one of {', '.join(calls.STATUSES)}", param_hint="STATUS")
    wanted = cast(calls.Status, new_status)
    write(ctx, as_json, "status set", lambda c: c.change_status(ref, wanted, expected_version=expect_version))


@app.command(rich_help_panel="Working a ticket")
@handled
def priority(
    ctx: typer.Context,
    ref: Ref,
    level: Annotated[int, typer.Argument(min=1, max=5, metavar="PRIORITY", help="1 (most urgent) to 5.")],
    reason: Reason,
    expect_version: Expect = None,
    as_json: Json = False,
) -> None:
    """Override a ticket's priority, saying why."""
    write(
        ctx, as_json, "reprioritised", lambda c: c.change_priority(ref, level, reason, expected_version=expect_version)
    )


@app.command(rich_help_panel="Working a ticket")
@handled
def move(
    ctx: typer.Context,
    ref: Ref,
    queue: Annotated[str, typer.Argument(metavar="QUEUE", help="The queue to move it to.")],
    reason: Reason,
    expect_version: Expect = None,
    as_json: Json = False,
) -> None:
    """Move a ticket to another queue, saying why (routing leaves it there)."""
    write(ctx, as_json, "moved", lambda c: c.move_queue(ref, queue, reason, expected_version=expect_version))


@app.command(rich_help_panel="Working a ticket")
@handled
def resolve(
    ctx: typer.Context,
    ref: Ref,
    resolution: Annotated[
        str | None,
        typer.Argument(
            metavar="RESOLUTION", help="What was done (the customer is told); '-' or --stdin reads it, none: $EDITOR."
        ),
    ] = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the resolution from standard input.")] = False,
    expect_version: Expect = None,
    as_json: Json = False,
) -> None:
    """Resolve a ticket you own; the customer is e-mailed the resolution."""
    text = written(resolution, stdin, "resolution")
    write(ctx, as_json, "resolved", lambda c: c.resolve(ref, text, expected_version=expect_version))


@app.command(rich_help_panel="Working a ticket")
@handled
def close(ctx: typer.Context, ref: Ref, expect_version: Expect = None, as_json: Json = False) -> None:
    """Close a resolved ticket: it takes no more replies."""
    write(ctx, as_json, "closed", lambda c: c.close_ticket(ref, expected_version=expect_version))


@app.command(rich_help_panel="Working a ticket")
@handled
def reopen(ctx: typer.Context, ref: Ref, reason: Reason, expect_version: Expect = None, as_json: Json = False) -> None:
    """Reopen a resolved or closed ticket, saying why."""
    write(ctx, as_json, "reopened", lambda c: c.reopen(ref, reason, expected_version=expect_version))


@app.command(rich_help_panel="Working a ticket")
@handled
def merge(
    ctx: typer.Context,
    ref: Ref,
    into: Annotated[str, typer.Argument(metavar="INTO", help="The ticket it merges into (its work continues there).")],
    reason: Reason,
    expect_version: Expect = None,
    as_json: Json = False,
) -> None:
    """Merge a ticket into another (a duplicate into the one being worked)."""
    write(ctx, as_json, f"merged into {into}", lambda c: c.merge(ref, into, reason, expected_version=expect_version))


Kind = Annotated[str, typer.Option("--kind", "-k", help=f"One of {', '.join(calls.LINK_KINDS)}.")]


def link_kind(kind: str) -> calls.LinkKind:
    if kind not in calls.LINK_KINDS:
        raise typer.BadParameter(f"must be one of {', '.join(calls.LINK_KINDS)}", param_hint="--kind")
    return cast(calls.LinkKind, kind)


@app.command(rich_help_panel="Working a ticket")
@handled
def link(
    ctx: typer.Context,
    ref: Ref,
    target: Annotated[str, typer.Argument(metavar="TARGET", help="The other ticket.")],
    kind: Kind = "relates_to",
    expect_version: Expect = None,
    as_json: Json = False,
) -> None:
    """Link a ticket to another (the other records the inverse link)."""
    k = link_kind(kind)
    what = f"linked ({k} {target})"
    write(ctx, as_json, what, lambda c: c.link(ref, target, k, expected_version=expect_version))


@app.command(rich_help_panel="Working a ticket")
@handled
def unlink(
    ctx: typer.Context,
    ref: Ref,
    target: Annotated[str, typer.Argument(metavar="TARGET", help="The other ticket.")],
    kind: Kind = "relates_to",
    expect_version: Expect = None,
    as_json: Json = False,
) -> None:
    """Remove a link between two tickets."""
    k = link_kind(kind)
    what = f"unlinked ({k} {target})"
    write(ctx, as_json, what, lambda c: c.unlink(ref, target, k, expected_version=expect_version))
