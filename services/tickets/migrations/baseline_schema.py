"""The ticket database as it stood when migrations began (revision ``0001``): frozen, never edited.

A copy of the tables the code defined then (release fc16dd1: the schema of
every database created before migrations), not an import of them: the code's
tables move on with every later revision, the baseline must not. It is what
the baseline revision creates, and what a database made by ``create_all``
before migrations existed is checked against before it is adopted.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    inspect,
)

from runtime.database import UtcDateTime

metadata = MetaData()
Position = BigInteger().with_variant(Integer, "sqlite")

Table(
    "ticket_events",
    metadata,
    Column("position", Position, primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("ticket_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("correlation_id", String(200), nullable=False),
    Column("causation_id", String(200)),
    UniqueConstraint("ticket_id", "version", name="uq_ticket_events_stream"),
)
Table(
    "ticket_numbers",
    metadata,
    Column("seq", Position, primary_key=True, autoincrement=True),
    Column("ticket_id", Uuid, nullable=False, unique=True),
)
Table(
    "processed_commands",
    metadata,
    Column("command_id", Uuid, primary_key=True),
    Column("ticket_id", Uuid, nullable=False),
    Column("processed_at", UtcDateTime, nullable=False),
    Column("outcome", String(200), nullable=False),
)
Table(
    "relay_positions",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
)
Table(
    "tickets",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("number", String(30), nullable=False, unique=True),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("subject", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("channel_message_id", String(200), nullable=False),
    Column("customer", JSON, nullable=False),
    Column("customer_id", String(200)),
    Column("components", JSON, nullable=False),
    Column("priority", Integer),
    Column("queue", String(100)),
    Column("level", Integer, nullable=False),
    Column("assignee", String(200)),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("resolution", Text),
    Column("resolved_by", String(200)),
    Column("flags", JSON, nullable=False),
    Column("search_text", Text, nullable=False),
    Index("ix_tickets_queue_line", "queue", "status", "priority", "opened_at"),
    Index("ix_tickets_status_opened", "status", "opened_at"),
    Index("ix_tickets_opened", "opened_at"),
    Index("ix_tickets_customer", "customer_id", "opened_at"),
    Index("ix_tickets_assignee", "assignee", "status"),
    Index("ix_tickets_channel_message", "channel", "channel_message_id", unique=True),
)
Table(
    "ticket_deadlines",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("number", String(30), nullable=False),
    Column("policy", String(200), nullable=False),
    Column("calendar", String(200), nullable=False),
    Column("deadlines", JSON, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
)


def create_missing(conn: Connection) -> list[str]:
    """Create the baseline's tables and indexes that ``conn``'s database lacks; returns what was created."""
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    created = []
    for table in metadata.sorted_tables:
        if table.name not in existing:
            table.create(conn)
            created.append(table.name)
            continue
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes and _applies(index, conn):
                index.create(conn)
                created.append(str(index.name))
    return created


def _applies(index: Index, conn: Connection) -> bool:
    """False for an index meant for another database (``Index(...).ddl_if(dialect=...)``)."""
    ddl_if: Any = index._ddl_if
    return ddl_if is None or ddl_if.dialect is None or conn.dialect.name == ddl_if.dialect
