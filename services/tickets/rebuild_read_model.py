"""Rebuild the tickets read model from the log: ``python -m services.tickets.rebuild_read_model``.

For after a change to the read model's shape, or when it is suspected wrong.
Safe while the service runs: readers see the old rows until the new ones are
committed; appends wait for the rebuild to finish. Progress is logged.
"""

from __future__ import annotations

import asyncio
import sys

from runtime.logs import configure_logging
from runtime.settings import CommonSettings, ConfigError, load
from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.repository import rebuild_read_model
from services.tickets.config import Settings


async def rebuild(settings: Settings) -> int:
    db = TicketDatabase(settings.database_url)
    try:
        await db.create_tables()
        return await rebuild_read_model(db)
    finally:
        await db.close()


def main() -> int:
    try:
        common, settings = load(CommonSettings), load(Settings)
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    configure_logging("tickets-rebuild", common.log_level, common.log_format)
    tickets = asyncio.run(rebuild(settings))
    print(f"read model rebuilt: {tickets} tickets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
