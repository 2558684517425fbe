"""Alembic's entry point for the ticket database: always run on a connection handed over in code.

``services.tickets.migrations.upgrade`` (start-up) and ``python -m
services.tickets.migrate`` open the connection, inside a transaction, and pass
it in ``config.attributes["connection"]``; there is no alembic.ini and no URL here.
"""

from __future__ import annotations

from alembic import context

from services.tickets.adapters.database import tables

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the ticket migrations with `python -m services.tickets.migrate` (it connects for you)")

context.configure(
    connection=connection,
    target_metadata=tables(),
    # SQLite's ALTER TABLE cannot change or drop most things: Alembic copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
