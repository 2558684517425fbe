"""The ``helpdesk`` command line: an agent's working day at the terminal.

    helpdesk login --url http://127.0.0.1:8002        # paste the token (or pipe it in)
    helpdesk queues                                   # where the work waits
    helpdesk next network                             # take the head of a queue's line
    helpdesk note HD-12 "Called back, no answer"      # internal; --public reaches the customer
    helpdesk resolve HD-12 "Replaced the VPN token"
    helpdesk watch network                            # new work as it arrives

Every command takes --json (the API's answer, for scripts). Exit codes: 0 ok,
1 error, 2 usage, 3 not found, 4 conflict, 5 not logged in / not allowed,
6 a ticket rule forbids it, 7 server unreachable. The commands live in
account.py, reading.py, working.py and live.py; cli/__init__.py gathers them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from helpdesk_client.cli.context import Session

app = typer.Typer(
    name="helpdesk",
    help="Work the help desk's tickets from the terminal. See docs/client.md.",
    epilog="Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 conflict, 5 auth, 6 ticket rule, 7 unreachable.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tickets_app = typer.Typer(help="List, search and show tickets.", no_args_is_help=True)
app.add_typer(tickets_app, name="tickets", rich_help_panel="Reading")


@app.callback()
def connection(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option("--url", envvar="HELPDESK_URL", help="The ticket service, e.g. http://127.0.0.1:8002.")
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="HELPDESK_TOKEN", help="An agent's token (else the stored one).")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="HELPDESK_API_KEY", help="An integration's API key.")
    ] = None,
) -> None:
    ctx.obj = Session(url, token, api_key)
