"""Run the ticket service: ``python -m services.tickets``."""

from __future__ import annotations

from runtime.settings import CommonSettings, ConfigError, exit_on_config_error, load
from services.tickets.bootstrap import build
from services.tickets.config import Settings


def main() -> None:
    try:
        service = build(load(CommonSettings), load(Settings))
    except ConfigError as exc:
        exit_on_config_error(exc)
        return
    service.run()


if __name__ == "__main__":
    main()
