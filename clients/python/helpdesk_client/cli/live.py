"""Watching ticket events live."""

from __future__ import annotations

from typing import Annotated

import typer

from helpdesk_client.cli import output
from helpdesk_client.cli.app import app
from helpdesk_client.cli.context import Json, handled, session


@app.command(rich_help_panel="Live")
@handled
def watch(
    ctx: typer.Context,
    queue: Annotated[
        list[str] | None, typer.Argument(metavar="QUEUE...", help="Queues to watch (none: every queue).")
    ] = None,
    ticket: Annotated[str | None, typer.Option("--ticket", "-t", help="Only this ticket's events.")] = None,
    after: Annotated[
        str | None, typer.Option("--after", help="Replay from after this event id (shown with --json) first.")
    ] = None,
    count: Annotated[int, typer.Option("--count", min=0, help="Stop after this many events (0: never).")] = 0,
    as_json: Json = False,
) -> None:
    """Ticket events as they happen (reconnects by itself; Ctrl-C stops). --json: one event per line."""
    with session(ctx).client() as client:
        events = client.stream(queue=queue or None, ticket=ticket, last_event_id=after)
        try:
            for seen, event in enumerate(events, start=1):
                output.json_line(event) if as_json else output.stream_event(event)
                if count and seen >= count:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            events.close()  # type: ignore[attr-defined]
