"""``python -m services.routing``: run the routing service."""

from __future__ import annotations

import sys

from runtime.settings import CommonSettings, ConfigError, exit_on_config_error, load
from services.routing.adapters.agents_file import AgentsFileError
from services.routing.adapters.rules_file import RulesFileError
from services.routing.bootstrap import build
from services.routing.config import Settings


def main() -> None:
    try:
        service = build(load(CommonSettings), load(Settings))
    except ConfigError as exc:
        exit_on_config_error(exc)
    except RulesFileError as exc:
        print(f"invalid routing rules (ROUTING_RULES_FILE):\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except AgentsFileError as exc:
        print(f"invalid agents (ROUTING_AGENTS_FILE):\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
    service.run()


if __name__ == "__main__":
    main()
