"""``python -m services.intake``: run the intake service."""

from __future__ import annotations

import sys

from runtime.settings import CommonSettings, ConfigError, exit_on_config_error, load
from services.intake.adapters.directory_file import DirectoryFileError
from services.intake.bootstrap import build
from services.intake.config import Settings


def main() -> None:
    try:
        service = build(load(CommonSettings), load(Settings))
    except ConfigError as exc:
        exit_on_config_error(exc)
    except DirectoryFileError as exc:
        print(f"invalid customer directory (INTAKE_DIRECTORY_FILE):\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
    service.run()


if __name__ == "__main__":
    main()
