"""Logging in and out: the server URL and token kept for the next commands."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from helpdesk_client.cli import credentials, output
from helpdesk_client.cli.app import app
from helpdesk_client.cli.context import claims_of, fail, handled, session
from helpdesk_client.cli.failures import ExitCode
from helpdesk_client.client import HelpdeskClient
from helpdesk_client.errors import Unauthorized
from helpdesk_client.session import DEFAULT_URL


@app.command(rich_help_panel="Logging in")
@handled
def login(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option("--url", help="The ticket service (default: --url/HELPDESK_URL).")] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="The token; without it, read from stdin (prompted on a terminal).")
    ] = None,
    verify: Annotated[bool, typer.Option(help="Check the token with the server before saving it.")] = True,
) -> None:
    """Save the server URL and your token (file readable only by you) for the next commands."""
    where = url or session(ctx).url or DEFAULT_URL
    if token is None:
        token = typer.prompt("Token", hide_input=True) if sys.stdin.isatty() else sys.stdin.read()
    token = token.strip()
    if not token:
        fail(ExitCode.USAGE, "no token given (pass --token, or pipe it in)")
    if verify:
        with HelpdeskClient(where, token=token) as client:
            try:
                client.queues()
            except Unauthorized as refused:
                fail(ExitCode.AUTH, f"the server refused the token: {output.escape(str(refused))}")
    saved = credentials.save(credentials.Credentials(url=where, token=token))
    claims = claims_of(token)
    roles = ", ".join(claims.get("roles", [])) or "no roles"
    output.console.print(f"Logged in to {where} as [bold]{claims.get('sub', '?')}[/] ({roles}); saved in {saved}")


@app.command(rich_help_panel="Logging in")
def logout() -> None:
    """Forget the stored token."""
    gone = credentials.forget()
    output.console.print("Logged out." if gone else "Not logged in.")
