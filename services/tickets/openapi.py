"""Generate the ticket API's checked-in OpenAPI document: ``python -m services.tickets.openapi``.

It writes ``docs/tickets-openapi.json`` from the app itself (what FastAPI
serves at ``/openapi.json``), keys sorted, indented by two, with a trailing
newline, so that a change of the API shows as a readable diff in review.
``--check`` writes nothing and exits 1, naming what differs, when the
checked-in document is not what the code generates (the test suite runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from runtime.auth import AuthSettings
from runtime.settings import CommonSettings
from services.tickets.bootstrap import build
from services.tickets.config import Settings

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "tickets-openapi.json"
SHOWN_DIFFERENCES = 40


def openapi_document() -> dict[str, Any]:
    # Built from the settings' defaults, not the environment: the document describes the code, not a deployment.
    # An in-memory database: building the service must not create ./var/tickets.db.
    settings = Settings.model_construct(database_url="sqlite+aiosqlite:///:memory:")
    # The document is the same however tokens are checked; a throw-away secret lets the app be built.
    auth = AuthSettings.model_construct(jwt_secret=SecretStr("x" * 32))
    return build(CommonSettings.model_construct(), settings, auth).app.openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def differences(checked_in: Any, generated: Any, where: str = "") -> list[str]:
    """What changes the checked-in document into the generated one, one line per place, e.g.
    ``added: paths['/v1/tickets/{ref}/merge']``."""
    if isinstance(checked_in, dict) and isinstance(generated, dict):
        found = []
        for key in sorted(checked_in.keys() | generated.keys()):
            place = _place(where, key)
            if key not in checked_in:
                found.append(f"added: {place}")
            elif key not in generated:
                found.append(f"removed: {place}")
            else:
                found.extend(differences(checked_in[key], generated[key], place))
        return found
    return [] if checked_in == generated else [f"changed: {where or 'the whole document'}"]


def _place(where: str, key: str) -> str:
    if key.isidentifier():
        return f"{where}.{key}" if where else key
    return f"{where}[{key!r}]"


def stale() -> list[str]:
    """Why the checked-in document is not current (nothing: it is)."""
    name = DOCUMENT.relative_to(DOCUMENT.parents[1])
    if not DOCUMENT.exists():
        return [f"missing: {name}"]
    generated = openapi_document()
    text = DOCUMENT.read_text(encoding="utf-8")
    if text == render(generated):
        return []
    try:
        checked_in = json.loads(text)
    except json.JSONDecodeError as exc:
        return [f"{name} is not JSON ({exc.msg} at line {exc.lineno})"]
    # Same content, other layout (hand-edited): say so rather than list nothing.
    return differences(checked_in, generated) or [f"{name} is not laid out as the generator writes it"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1, naming the differences, if the document is stale",
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = stale()
        for line in problems[:SHOWN_DIFFERENCES]:
            print(line, file=sys.stderr)
        if len(problems) > SHOWN_DIFFERENCES:
            print(f"... and {len(problems) - SHOWN_DIFFERENCES} more", file=sys.stderr)
        if problems:
            print(
                f"{DOCUMENT.name} is out of date; run: python -m services.tickets.openapi",
                file=sys.stderr,
            )
        return 1 if problems else 0
    DOCUMENT.write_text(render(openapi_document()), encoding="utf-8")
    print(f"wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
