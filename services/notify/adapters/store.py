"""Notify's store (SQLAlchemy Core; SQLite or PostgreSQL).

``customer_contacts``: who to tell about each ticket, from ``ticket.opened``.
``sent_notifications``: one row per notification handed to its channel (or
held back by a rate limit), keyed by its notification key; it is checked before
sending and written right after, so a redelivered cause is not sent again. Both are written with ``INSERT ... ON
CONFLICT DO NOTHING``: the first row for a key is the record, so writing a
redelivered one again is harmless and needs no record of processed events.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import Column, MetaData, String, Table, Uuid, select
from sqlalchemy.engine import make_url

from runtime.database import UtcDateTime, dialect_insert, make_engine, ping
from services.notify.domain import CustomerContact, Notification

metadata = MetaData()

customer_contacts = Table(
    "customer_contacts",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("number", String(40), nullable=False),
    Column("email", String(320), nullable=True),
    Column("name", String(200), nullable=True),
    Column("subject", String(300), nullable=False),
    Column("language", String(10), nullable=True),
    Column("thread_root", String(400), nullable=True),
)

sent_notifications = Table(
    "sent_notifications",
    metadata,
    Column("notification_key", String(200), primary_key=True),
    Column("event_id", Uuid, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("sent_at", UtcDateTime, nullable=False),
    # "sent", or "held_back" (over a rate limit: recorded so it is visible, and never sent later).
    Column("outcome", String(20), nullable=False, server_default="sent"),
)


class NotifyStore:
    def __init__(self, url: str) -> None:
        self.writer = make_engine(url, writer=True)
        backend = make_url(url).get_backend_name()
        self.reader = make_engine(url, writer=False) if backend == "sqlite" else self.writer
        insert = dialect_insert(backend)
        # The first contact stored for a ticket stays: a redelivered opening changes nothing.
        self._remember = insert(customer_contacts).on_conflict_do_nothing(index_elements=["ticket_id"])
        # Another replica sent it too (a rebalance): one row is the record.
        self._record = insert(sent_notifications).on_conflict_do_nothing(index_elements=["notification_key"])

    async def create_schema(self) -> None:
        async with self.writer.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()

    async def ready(self) -> bool:
        return await ping(self.reader)

    async def remember_contacts(self, contacts: Sequence[CustomerContact]) -> None:
        """Store each ticket's contact, unless one is stored already; one statement for the lot."""
        rows = [
            {"ticket_id": c.ticket_id, "number": c.number, "email": c.email, "name": c.name, "subject": c.subject,
             "language": c.language, "thread_root": c.thread_root}
            for c in contacts
        ]
        if rows:
            async with self.writer.begin() as conn:
                await conn.execute(self._remember, rows)

    async def contacts(self, ticket_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, CustomerContact]:
        """The known contact of each of these tickets (a ticket whose opening was not seen is absent)."""
        query = select(customer_contacts).where(customer_contacts.c.ticket_id.in_(list(ticket_ids)))
        async with self.reader.connect() as conn:
            rows = await conn.execute(query)
            return {
                r.ticket_id: CustomerContact(r.ticket_id, r.number, r.email, r.name, r.subject, r.language, r.thread_root)
                for r in rows
            }

    async def already_sent(self, notification_keys: Collection[str]) -> set[str]:
        """Those of ``notification_keys`` recorded as sent."""
        column = sent_notifications.c.notification_key
        async with self.reader.connect() as conn:
            return set((await conn.execute(select(column).where(column.in_(list(notification_keys))))).scalars())

    async def record_sent(self, email: Notification, sent_at: datetime, outcome: str = "sent") -> None:
        await self.record_many([(email, outcome)], sent_at)

    async def record_many(self, handed_over: Sequence[tuple[Notification, str]], at: datetime) -> None:
        """Record each (notification, outcome) in one transaction."""
        rows = [
            {"notification_key": n.notification_key, "event_id": n.cause, "channel": n.method,
             "recipient": n.to[:320], "sent_at": at, "outcome": outcome}
            for n, outcome in handed_over
        ]
        if rows:
            async with self.writer.begin() as conn:
                await conn.execute(self._record, rows)
