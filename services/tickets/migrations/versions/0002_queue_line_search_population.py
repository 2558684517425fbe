"""The read model's queue line ordered to the end, full-text search, and the ticket population.

Revision ID: 0002
Revises: 0001
Created: 2026-11-26

- ``ix_tickets_queue_line`` gains ``number``: the line's order is total, so
  taking the head of a queue reads the head of the index and sorts nothing.
- PostgreSQL: a GIN index on the words of ``search_text`` (``?q=`` is
  full-text search there; SQLite keeps searching with LIKE).
- ``ticket_population``: how many tickets there are of each status, priority and
  queue, kept by every write of the read model. Filled here from the tickets
  already in the read model, so the counts are right from the first moment.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# As the read model writes them in the population's key (frozen here: this revision must not follow the code).
NO_PRIORITY, NO_QUEUE = 0, ""


def upgrade() -> None:
    op.drop_index("ix_tickets_queue_line", table_name="tickets")
    op.create_index("ix_tickets_queue_line", "tickets", ["queue", "status", "priority", "opened_at", "number"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_tickets_search",
            "tickets",
            [sa.text("to_tsvector('simple'::regconfig, search_text)")],
            postgresql_using="gin",
        )
    op.create_table(
        "ticket_population",
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("priority", sa.Integer, primary_key=True),
        sa.Column("queue", sa.String(100), primary_key=True),
        sa.Column("tickets", sa.Integer, nullable=False),
    )
    op.execute(
        sa.text(
            "INSERT INTO ticket_population (status, priority, queue, tickets) "
            "SELECT status, COALESCE(priority, :no_priority), COALESCE(queue, :no_queue), COUNT(*) "
            "FROM tickets GROUP BY status, COALESCE(priority, :no_priority), COALESCE(queue, :no_queue)"
        ).bindparams(no_priority=NO_PRIORITY, no_queue=NO_QUEUE)
    )


def downgrade() -> None:
    op.drop_table("ticket_population")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_tickets_search", table_name="tickets")
    op.drop_index("ix_tickets_queue_line", table_name="tickets")
    op.create_index("ix_tickets_queue_line", "tickets", ["queue", "status", "priority", "opened_at"])
