"""Mint a credential for local use: an agent's or a customer's token, or an integration's API key.

``python -m services.tickets.mint_token --agent alice [--role lead]`` and
``--customer c-42`` print a JWT signed with the shared secret (``AUTH_JWT_SECRET``,
or the development secret when ``HELPDESK_DEVELOPMENT=true``), issuer and audience,
so the services started from the same environment accept it. Deployments check
tokens by their identity provider's key set (``AUTH_JWKS_URL``) and mint them there.

``--api-key crm`` prints a new random key for the integration ``crm`` (on
stdout) and the line to configure (on stderr): the service keeps only the key's sha256
(``TICKETS_API_KEYS='{"crm": "<sha256 hex>"}'``); the key itself goes to the
integration and nowhere else.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import secrets
import sys

from runtime.auth import STAFF_ROLES, AuthSettings, TokenVerifier
from runtime.settings import CommonSettings, ConfigError, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.tickets.mint_token", description=__doc__.splitlines()[0])
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--agent", help="an agent's token: the agent id (the token's subject)")
    who.add_argument("--customer", help="a customer's token: the customer's directory id (customer_id on tickets)")
    who.add_argument("--api-key", metavar="NAME", help="a new API key for the integration NAME, and its sha256")
    parser.add_argument("--role", action="append", choices=STAFF_ROLES, help="an agent's role; repeat (default: agent)")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires (default 3600)")
    args = parser.parse_args(argv)
    if args.api_key is not None:
        return _api_key(parser, args.api_key)
    subject = args.agent if args.agent is not None else args.customer
    if not subject.strip():
        parser.error("--agent / --customer must not be blank")
    if args.customer is not None and args.role:
        parser.error("--role is for agents' tokens; a customer's token has the role customer")
    if args.ttl <= 0:
        parser.error("--ttl must be positive")
    try:
        settings = load(AuthSettings)
        if args.ttl > settings.max_token_lifetime_s:
            parser.error(f"--ttl: at most {settings.max_token_lifetime_s}s (AUTH_MAX_TOKEN_LIFETIME_S)")
        verifier = TokenVerifier(settings, development=load(CommonSettings).helpdesk_development)
        roles = ["customer"] if args.customer is not None else args.role or ["agent"]
        token = verifier.mint(subject, roles, args.ttl)
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    if verifier.uses_development_secret:
        print("warning: signed with the development secret (HELPDESK_DEVELOPMENT=true)", file=sys.stderr)
    print(token)
    return 0


def _api_key(parser: argparse.ArgumentParser, name: str) -> int:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name):
        parser.error("--api-key: the integration's name is 1-100 letters, digits, '.', '_' or '-'")
    key = secrets.token_urlsafe(32)
    digest = hashlib.sha256(key.encode()).hexdigest()
    # The key alone on stdout (KEY=$(... --api-key crm)); what to configure on stderr.
    print(key)
    print(f"sha256 of the key: {digest}", file=sys.stderr)
    print(
        f"configure: TICKETS_API_KEYS='{json.dumps({name: digest})}'  (or add it to TICKETS_API_KEYS_FILE)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
