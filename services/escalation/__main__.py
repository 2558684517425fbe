"""``python -m services.escalation``: run the escalation service."""

from __future__ import annotations

from runtime.settings import CommonSettings, ConfigError, exit_on_config_error, load
from services.escalation.bootstrap import build
from services.escalation.config import Settings


def main() -> None:
    try:
        service = build(load(CommonSettings), load(Settings))
    except ConfigError as exc:  # a bad variable or a bad levels file
        exit_on_config_error(exc)
        return
    service.run()


if __name__ == "__main__":
    main()
