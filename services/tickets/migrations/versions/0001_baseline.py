"""Baseline: the ticket database as it stood when migrations began.

Revision ID: 0001
Revises: (none)
Created: 2026-11-26

The tables are those of :mod:`services.tickets.migrations.baseline_schema`, a
frozen copy. Only what is missing is created, so the same step also completes a
database that ``create_all`` made before migrations existed (see the package's
docstring on adoption).
"""

from __future__ import annotations

from alembic import op

from services.tickets.migrations import baseline_schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    baseline_schema.create_missing(op.get_bind())


def downgrade() -> None:
    baseline_schema.metadata.drop_all(op.get_bind())
