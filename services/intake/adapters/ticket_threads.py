"""Which ticket a conversation or one of our mails belongs to, learnt from the ticket events.

Intake reads the ticket log (``helpdesk.tickets.events.v1``) for two facts:
``ticket.opened`` says which channel message (a chat conversation, a call, a
mail) opened ticket ``HD-n``; ``ticket.resolved`` is the cause of the
resolution mail whose Message-ID is ``<resolved.<event id>@helpdesk>``.
With these, a later line of the conversation, a call's end, or a reply to
our mail is sent with ``reply_to_number`` set.

On social media the conversation is the sender: a Messenger or Instagram
sender (``facebook:<PSID>``), a bridge's author handle. ``ticket.opened`` of a
social contact also says which ticket that sender's conversation is on now
(the latest opened wins), so their next message is a reply on it even when
the directory does not know them and they quote no number.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from datetime import datetime

from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from runtime.database import UtcDateTime, is_sqlite, make_engine

metadata = MetaData()
threads = Table(
    "intake_ticket_threads",
    metadata,
    Column("thread_key", String(260), primary_key=True),
    Column("number", String(30), nullable=False),
)
sender_threads = Table(
    "intake_sender_threads",
    metadata,
    Column("sender_key", String(260), primary_key=True),
    Column("number", String(30), nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
)


def channel_thread(channel: str, channel_message_id: str) -> str:
    return f"{channel}:{channel_message_id}"


def mail_thread(message_id: str) -> str:
    return f"message-id:{message_id.strip().lower()}"


def sender_thread(channel: str, sender: str) -> str:
    """The conversation of one sender on a channel (``sender`` already normalised)."""
    return f"{channel}:{sender}"


class TicketThreads:
    def __init__(self, url: str) -> None:
        self._engine = make_engine(url)

    async def create_tables(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self._engine.dispose()

    async def remember(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Record (thread key, ticket number) pairs; a pair seen again changes nothing."""
        if not pairs:
            return
        insert = sqlite_insert if is_sqlite(self._engine) else pg_insert
        rows = [{"thread_key": key[:260], "number": number} for key, number in dict(pairs).items()]
        async with self._engine.begin() as conn:
            await conn.execute(insert(threads).on_conflict_do_nothing(index_elements=["thread_key"]), rows)

    async def remember_senders(self, opened: Sequence[tuple[str, str, datetime]]) -> None:
        """Record (sender key, ticket number, opened at): a sender's conversation moves to the latest ticket opened.

        Applying the same fact again, or an older one after a newer (events of different tickets are on
        different partitions), changes nothing.
        """
        latest: dict[str, tuple[str, datetime]] = {}
        for key, number, at in opened:
            if key not in latest or at > latest[key][1]:
                latest[key] = (number, at)
        if not latest:
            return
        insert = (sqlite_insert if is_sqlite(self._engine) else pg_insert)(sender_threads)
        rows = [{"sender_key": key[:260], "number": n, "opened_at": at} for key, (n, at) in latest.items()]
        newer = insert.on_conflict_do_update(
            index_elements=["sender_key"],
            set_={"number": insert.excluded.number, "opened_at": insert.excluded.opened_at},
            where=insert.excluded.opened_at > sender_threads.c.opened_at,
        )
        async with self._engine.begin() as conn:
            await conn.execute(newer, rows)

    async def number_of_sender(self, key: str) -> str | None:
        """The ticket the sender's conversation is on (the latest their contacts opened), or None."""
        async with self._engine.connect() as conn:
            query = select(sender_threads.c.number).where(sender_threads.c.sender_key == key[:260])
            return (await conn.execute(query)).scalar()

    async def number_of(self, keys: Sequence[str]) -> str | None:
        """The ticket of the first of ``keys`` that is known."""
        if not keys:
            return None
        async with self._engine.connect() as conn:
            found = dict(
                (
                    await conn.execute(
                        select(threads.c.thread_key, threads.c.number).where(threads.c.thread_key.in_(keys))
                    )
                ).all()
            )
        return next((found[k] for k in keys if k in found), None)

    async def wait_for_number(self, key: str, timeout_s: float) -> str | None:
        """The ticket of ``key``, waiting up to ``timeout_s`` for the ticket service to open it."""
        deadline = time.monotonic() + timeout_s
        while (number := await self.number_of([key])) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return number
