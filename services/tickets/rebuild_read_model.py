"""Rebuild the tickets read model from the log: ``python -m services.tickets.rebuild_read_model``.

For after a change to the read model's shape, or when it is suspected wrong.
Safe while the service runs: one transaction, so readers see the old rows
until the new ones are committed; appends wait for the rebuild to finish
(the append lock is held), so no event slips between the log read and the rows
written. The database is migrated to head first.

On a terminal it shows a progress bar (events folded, events/s, time left);
otherwise (a Job, ``kubectl exec`` without ``-t``, a pipe) it logs a progress
line every few seconds with the same figures.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from runtime.logs import configure_logging, get_logger
from runtime.settings import CommonSettings, ConfigError, load
from services.tickets.adapters import repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.repository import RebuildProgress
from services.tickets.config import Settings

log = get_logger("tickets.rebuild")

LOG_EVERY_S = 5.0


async def rebuild(db: TicketDatabase, progress: RebuildProgress) -> int:
    """Throw the read model away and fold it again from the log; returns the tickets written."""
    return await repository.rebuild_read_model(db, progress)


class ProgressLog:
    """Progress as log lines, every ``every_s`` seconds: for when nobody watches a terminal."""

    def __init__(self, every_s: float = LOG_EVERY_S) -> None:
        self._every_s = every_s
        self.total = self.events = self.tickets = 0
        self._started = self._logged = time.monotonic()

    def start(self, events: int) -> None:
        self.total = events
        self._started = self._logged = time.monotonic()
        log.info("rebuilding the read model", events_total=events)

    def advance(self, events: int, tickets: int) -> None:
        self.events += events
        self.tickets += tickets
        if time.monotonic() - self._logged >= self._every_s:
            self._logged = time.monotonic()
            log.info("rebuilding the read model", **self.figures())

    def finish(self) -> None:
        log.info("read model rebuilt", **self.figures())

    def figures(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self.events / elapsed
        left = max(self.total - self.events, 0)
        return {
            "events": self.events,
            "events_total": self.total,
            "tickets": self.tickets,
            "percent": round(100 * self.events / self.total, 1) if self.total else 100.0,
            "events_per_s": round(rate),
            "eta_s": round(left / rate, 1) if rate else None,
        }


class ProgressBar:
    """A rich progress bar on the terminal (stderr): events folded of all, events/s, time left."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("rebuild"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task = self._bar.add_task("rebuild", total=None, rate="events")
        self.tickets = 0

    def start(self, events: int) -> None:
        self._bar.update(self._task, total=events)
        self._bar.start()

    def advance(self, events: int, tickets: int) -> None:
        self.tickets += tickets
        self._bar.advance(self._task, events)
        speed = self._bar.tasks[0].speed
        self._bar.update(self._task, rate=f"events {speed:,.0f}/s" if speed else "events")

    def finish(self) -> None:
        self._bar.stop()


def progress_for(stream: Any) -> RebuildProgress:
    """A bar where a person watches (a terminal, and rich is installed), log lines elsewhere."""
    if stream.isatty():
        try:
            return ProgressBar()
        except ImportError:
            pass
    return ProgressLog()


async def _main(settings: Settings) -> int:
    db = TicketDatabase(settings.database_url)
    try:
        await db.migrate()
        return await rebuild(db, progress_for(sys.stderr))
    finally:
        await db.close()


def main() -> int:
    try:
        common, settings = load(CommonSettings), load(Settings)
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    configure_logging("tickets-rebuild", common.log_level, common.log_format)
    tickets = asyncio.run(_main(settings))
    print(f"read model rebuilt: {tickets} tickets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
