"""What every command needs: where to connect and as whom, the common options, and failing cleanly."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer

from helpdesk_client.cli import credentials, output
from helpdesk_client.cli.failures import ExitCode, exit_code_for, message_for
from helpdesk_client.client import HelpdeskClient
from helpdesk_client.errors import HelpdeskError
from helpdesk_client.session import DEFAULT_URL

F = TypeVar("F", bound=Callable[..., Any])

Json = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer (for scripts) instead of a table.")]
Ref = Annotated[str, typer.Argument(metavar="TICKET", help="The ticket: its number (HD-12) or id.", show_default=False)]
Expect = Annotated[
    int | None,
    typer.Option(
        "--expect-version",
        help="Only if the ticket is still at this version (from `show`); otherwise change nothing and exit 4.",
    ),
]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why (recorded on the ticket).", show_default=False)]


@dataclass
class Session:
    """Where to connect and as whom: options, then environment, then what `login` stored."""

    url: str | None
    token: str | None
    api_key: str | None

    def client(self) -> HelpdeskClient:
        stored = credentials.load()
        token, api_key = self.token, self.api_key
        if not token and not api_key and stored:
            token, api_key = stored.token, stored.api_key
        if not token and not api_key:
            fail(ExitCode.AUTH, "not logged in: run `helpdesk login` (or set HELPDESK_TOKEN)")
        url = self.url or (stored.url if stored else None) or DEFAULT_URL
        return HelpdeskClient(url, token=token, api_key=api_key)

    def agent(self) -> str | None:
        stored = credentials.load()
        token = self.token or (stored.token if stored else None)
        return str(claims_of(token).get("sub")) if token and claims_of(token).get("sub") else None


def fail(code: ExitCode, message: str) -> None:
    output.errors.print(f"[red]error:[/] {message}", markup=True)
    raise typer.Exit(int(code))


def handled(command: F) -> F:
    """Expected failures end with a one-line message and their exit code, never a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HelpdeskError as error:
            fail(exit_code_for(error), output.escape(message_for(error)))

    return run  # type: ignore[return-value]


def session(ctx: typer.Context) -> Session:
    return ctx.ensure_object(Session) if ctx.obj is None else ctx.obj  # type: ignore[no-any-return]


def claims_of(token: str) -> dict[str, Any]:
    """The token's claims, unverified: only to say who you are (the server does the checking)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims if isinstance(claims, dict) else {}
    except (IndexError, ValueError):
        return {}


def instant(value: str | None) -> datetime | None:
    """ISO 8601; a date or time without an offset is taken as UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date or time (e.g. 2025-03-01T09:30:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
