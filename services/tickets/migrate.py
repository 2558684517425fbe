"""The ticket database's migrations, by hand: ``python -m services.tickets.migrate <command>``.

    upgrade [REVISION]   bring the database to REVISION (default: head), as start-up does
    current              the revision the database is at
    history              every revision, newest first
    check                whether the database matches the code's tables (exit 1 if not)
    revision -m TEXT     write a new revision from the difference between the code's tables
                         and a database at head (review it before committing it)

The database is TICKETS_DATABASE_URL, as for the service. The service upgrades
by itself at start-up; ``upgrade`` is for running it first, from a Job, before
a rollout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from alembic import command
from sqlalchemy import Connection

from runtime.logs import configure_logging
from runtime.settings import CommonSettings, ConfigError, load
from services.tickets import migrations
from services.tickets.adapters.database import TicketDatabase, tables
from services.tickets.config import Settings


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="python -m services.tickets.migrate", description="The ticket database's schema migrations (Alembic)."
    )
    commands = parse.add_subparsers(dest="command", required=True)
    upgrade = commands.add_parser("upgrade", help="bring the database to a revision (default: head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    commands.add_parser("current", help="the revision the database is at")
    commands.add_parser("history", help="every revision, newest first")
    commands.add_parser("check", help="whether the database matches the code's tables (exit 1 if not)")
    revision = commands.add_parser("revision", help="write a new revision from the code's tables")
    revision.add_argument("-m", "--message", required=True, help="what the revision changes, in a few words")
    return parse


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "history":
        command.history(migrations.alembic_config(), verbose=False)
        return 0
    steps: dict[str, Callable[[Connection], int]] = {
        "upgrade": lambda conn: _upgrade(conn, args.revision),
        "current": _current,
        "check": _check,
        "revision": lambda conn: _revision(conn, args.message),
    }
    return asyncio.run(_on_database(settings, steps[args.command]))


async def _on_database(settings: Settings, step: Callable[[Connection], int]) -> int:
    db = TicketDatabase(settings.database_url)
    try:
        async with db.writer.begin() as conn:
            return await conn.run_sync(step)
    finally:
        await db.close()


def _upgrade(conn: Connection, revision: str) -> int:
    migrations.upgrade(conn, revision)
    print(f"ticket database at {migrations.current(conn)}")
    return 0


def _current(conn: Connection) -> int:
    print(migrations.current(conn) or "none (never migrated)")
    return 0


def _check(conn: Connection) -> int:
    diffs: list[Any] = migrations.differences(conn, tables())
    for diff in diffs:
        print(diff)
    print("the database matches the code's tables" if not diffs else f"{len(diffs)} difference(s)")
    return 1 if diffs else 0


def _revision(conn: Connection, message: str) -> int:
    command.revision(migrations.alembic_config(conn), message=message, autogenerate=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        common, settings = load(CommonSettings), load(Settings)
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    configure_logging("tickets-migrate", common.log_level, common.log_format)
    try:
        return run(args, settings)
    except migrations.SchemaMismatch as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
