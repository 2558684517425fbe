"""The ticket database's schema, revision by revision (Alembic), on SQLite and PostgreSQL.

The service upgrades its database to the newest revision (``head``) at
start-up, one replica at a time: on PostgreSQL the upgrade runs in one
transaction that first takes an advisory lock, so a second replica waits, then
finds the database at head and does nothing. On SQLite the writer's
``BEGIN IMMEDIATE`` serialises it the same way.

A database created before migrations existed (by ``metadata.create_all``: it has
the tables but no ``alembic_version``) is adopted: its tables are checked
against the baseline (:mod:`.baseline_schema`). If their columns match, the
indexes are made to match too (a missing one is created, one defined
differently is made again: indexes are derived data), it is stamped at the
baseline, and upgraded as any other. If columns or constraints differ,
start-up stops and says what differs rather than guess.

A schema change is a new revision in ``versions/``: change the tables in
``adapters/``, then ``python -m services.tickets.migrate revision -m "what"``
against a database at head writes the difference for review. The test
``tests/integration/test_tickets_migrations.py`` fails until head equals the
code's tables on both databases. On SQLite Alembic renders ALTERs as batch
operations (copy the table), as SQLite's ALTER TABLE cannot do most of them.
Every revision runs inside the one upgrade transaction, so none may need its own
(no ``CREATE INDEX CONCURRENTLY``), and each must leave the schema usable by the
release before it (expand now, contract in a later release). Alembic keeps its
state per process: one upgrade at a time in a process (start-up runs one).
See docs/operations.md (Upgrade with zero lost tickets).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, inspect, text

from runtime.logs import get_logger
from services.tickets.migrations import baseline_schema

log = get_logger("tickets.migrations")

BASELINE = "0001"
UPGRADE_LOCK_KEY = 0x4844_6D69_6772  # "HDmigr": one advisory lock id for the ticket schema's upgrades
HERE = Path(__file__).parent
# Alembic says "Context impl SQLiteImpl." at every step; what changed is logged here instead.
logging.getLogger("alembic").setLevel(logging.WARNING)


class SchemaMismatch(Exception):
    """The database has the ticket tables but not as the baseline defines them; it is not adopted."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, in code (no alembic.ini): the scripts here, and the connection to use."""
    config = Config(stdout=sys.stdout)  # the stream of the moment (Alembic's default is bound at import)
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


def upgrade(conn: Connection, revision: str = "head") -> None:
    """Bring the database to ``revision``, inside the caller's transaction (run it under ``begin()``)."""
    if conn.dialect.name == "postgresql":
        # Held to the end of the transaction: replicas starting together upgrade one after the other.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
    config = alembic_config(conn)
    if current(conn) is None:
        _adopt_if_created_before_migrations(conn, config)
    before = current(conn)
    command.upgrade(config, revision)
    after = current(conn)
    if after != before:
        log.info("ticket database migrated", revision_from=before, revision_to=after)


def stamp_head(conn: Connection) -> None:
    """Record the database as at the newest revision without running any (its tables were made from the code)."""
    command.stamp(alembic_config(conn), "head")


def current(conn: Connection) -> str | None:
    """The revision the database is at (None: never migrated)."""
    return MigrationContext.configure(conn).get_current_revision()


def differences(conn: Connection, metadata: MetaData) -> list[Any]:
    """What would have to change for the database to match ``metadata`` (empty: they match)."""
    context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    with warnings.catch_warnings():
        # SQLite cannot reflect expression indexes; ours (full-text search) are PostgreSQL's only.
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
        return compare_metadata(context, metadata)


def _adopt_if_created_before_migrations(conn: Connection, config: Config) -> None:
    ours = set(inspect(conn).get_table_names()) & set(baseline_schema.metadata.tables)
    if not ours:
        return  # a new, empty database: the baseline revision creates everything
    diffs = _flatten(differences(conn, baseline_schema.metadata))
    unexpected = [d for d in diffs if d[0] not in ("add_table", "add_index", "remove_table", "remove_index")]
    if unexpected:
        raise SchemaMismatch(
            "the ticket database has tables but no migration history, and they differ from the baseline "
            f"(revision {BASELINE}); not adopting it: " + "; ".join(_describe(d) for d in unexpected)
        )
    # Indexes are derived data: one the baseline defines differently is dropped and made again below.
    baseline_indexes = {i.name for t in baseline_schema.metadata.tables.values() for i in t.indexes}
    for index in (d[1] for d in diffs if d[0] == "remove_index"):
        if index.name in baseline_indexes:
            index.drop(conn)
        else:
            log.warning("the ticket database has an index migrations do not know; leaving it", index=index.name)
    created = baseline_schema.create_missing(conn)
    command.stamp(config, BASELINE)
    log.warning("adopted a ticket database created before migrations", stamped=BASELINE, created=created)


def _flatten(diffs: list[Any]) -> list[Any]:
    # compare_metadata groups the changes to one column in a list.
    return [d for group in diffs for d in (group if isinstance(group, list) else [group])]


def _describe(diff: Any) -> str:
    kind = diff[0]
    if kind.startswith("modify_"):
        return f"{kind} {diff[2]}.{diff[3]}: {diff[5]!r} in the database, {diff[6]!r} expected"
    thing = diff[-1] if kind in ("add_column", "remove_column") else diff[1]
    name = getattr(thing, "name", thing)
    table = f"{diff[2]}." if kind in ("add_column", "remove_column") else ""
    return f"{kind} {table}{name}"
