"""Notify's store (SQLAlchemy Core; SQLite or PostgreSQL).

``customer_contacts``: who to tell about each ticket, from ``ticket.opened``.
``sent_notifications``: one row per e-mail handed to SMTP, keyed by its
notification key; it is checked before sending and written right after, so a
redelivered cause is not sent again. ``processed_events``: ticket events
already applied, written in the same transaction as the contact.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Uuid, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.database import UtcDateTime, make_engine, ping
from services.notify.domain import CustomerContact, Email


metadata = MetaData()

customer_contacts = Table(
    "customer_contacts",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("number", String(40), nullable=False),
    Column("email", String(320), nullable=True),
    Column("name", String(200), nullable=True),
    Column("subject", String(300), nullable=False),
)

sent_notifications = Table(
    "sent_notifications",
    metadata,
    Column("notification_key", String(200), primary_key=True),
    Column("event_id", Uuid, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("sent_at", UtcDateTime, nullable=False),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
)


async def _exists(conn: AsyncConnection, column: Any, value: Any) -> bool:
    return (await conn.execute(select(column).where(column == value))).first() is not None


class NotifyStore:
    def __init__(self, url: str) -> None:
        self.writer = make_engine(url, writer=True)
        sqlite = make_url(url).get_backend_name() == "sqlite"
        self.reader = make_engine(url, writer=False) if sqlite else self.writer

    async def create_schema(self) -> None:
        async with self.writer.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()

    async def ready(self) -> bool:
        return await ping(self.reader)

    async def remember_contacts(self, contacts: list[tuple[uuid.UUID, CustomerContact]]) -> None:
        """Store each (event id, contact) once, with its event recorded as processed, in one transaction."""
        async with self.writer.begin() as conn:
            for event_id, contact in contacts:
                if await _exists(conn, processed_events.c.event_id, event_id):
                    continue
                if not await _exists(conn, customer_contacts.c.ticket_id, contact.ticket_id):
                    await conn.execute(
                        insert(customer_contacts).values(
                            ticket_id=contact.ticket_id,
                            number=contact.number,
                            email=contact.email,
                            name=contact.name,
                            subject=contact.subject,
                        )
                    )
                await conn.execute(insert(processed_events).values(event_id=event_id))

    async def contact(self, ticket_id: uuid.UUID) -> CustomerContact | None:
        async with self.reader.connect() as conn:
            query = select(customer_contacts).where(customer_contacts.c.ticket_id == ticket_id)
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return CustomerContact(row.ticket_id, row.number, row.email, row.name, row.subject)

    async def already_sent(self, notification_key: str) -> bool:
        async with self.reader.connect() as conn:
            return await _exists(conn, sent_notifications.c.notification_key, notification_key)

    async def record_sent(self, email: Email, sent_at: datetime) -> None:
        async with self.writer.begin() as conn:
            if await _exists(conn, sent_notifications.c.notification_key, email.notification_key):
                return  # another replica sent it too (a rebalance): one row is the record
            await conn.execute(
                insert(sent_notifications).values(
                    notification_key=email.notification_key,
                    event_id=email.cause,
                    channel=email.method,
                    recipient=email.to,
                    sent_at=sent_at,
                )
            )
