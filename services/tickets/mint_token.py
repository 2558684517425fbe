"""Mint an agent's token for local use: ``python -m services.tickets.mint_token --agent alice``.

The token is signed with the configured secret (``TICKETS_JWT_SECRET``, or the
development default), issuer and audience, so the ticket service started from
the same environment accepts it. Deployments mint tokens with their identity
provider instead.
"""

from __future__ import annotations

import argparse
import sys

from runtime.settings import ConfigError, load
from services.tickets.auth import ROLES, mint
from services.tickets.config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.tickets.mint_token", description=__doc__.splitlines()[0])
    parser.add_argument("--agent", required=True, help="the agent id (the token's subject)")
    parser.add_argument("--role", action="append", choices=ROLES, help="a role; repeat for several (default: agent)")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires (default 3600)")
    args = parser.parse_args(argv)
    if not args.agent.strip():
        parser.error("--agent must not be blank")
    if args.ttl <= 0:
        parser.error("--ttl must be positive")
    try:
        settings = load(Settings)
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    if settings.uses_dev_secret:
        print("warning: signed with the development secret; set TICKETS_JWT_SECRET", file=sys.stderr)
    print(mint(settings, args.agent, args.role or ["agent"], args.ttl))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
