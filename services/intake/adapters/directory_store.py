"""The customer directory in intake's own database (SQLite by default, PostgreSQL in deployments).

Fed by the directory file at start-up, the directory topic, bulk import and
the HTTP API, and read by the identification of every batch of incidents:
one query finds the customers any contact of the batch could be, and the
pure :func:`~services.intake.domain.identify` picks among them. Every replica
reads the same database, so a change is seen by all at once.

The no-two-customers-share-a-key rule is the database's: unique e-mail,
phone and handle columns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.incidents import ContactDetails
from runtime.database import UtcDateTime, make_engine, ping
from services.intake.domain import (
    Customer,
    Directory,
    DuplicateCustomer,
    normalise_email,
    normalise_handle,
    normalise_phone,
)

metadata = MetaData()
customers = Table(
    "intake_customers",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("email_key", String(320), unique=True, nullable=True),
    Column("phone", String(32), unique=True, nullable=True),
    Column("entry", JSON, nullable=False),
    Column("source", String(20), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
handles = Table(
    "intake_customer_handles",
    metadata,
    Column("handle_key", String(200), primary_key=True),
    Column("user_id", String(200), ForeignKey(customers.c.user_id, ondelete="CASCADE"), nullable=False, index=True),
)


class DirectoryStore:
    def __init__(self, url: str, region: str) -> None:
        self._engine = make_engine(url)
        self._region = region

    async def create_tables(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> bool:
        return await ping(self._engine)

    # --- writing -----------------------------------------------------------------

    async def put(self, customer: Customer, source: str) -> None:
        """Add or replace ``customer``; :class:`DuplicateCustomer` if another customer holds one of its keys."""
        async with self._engine.begin() as conn:
            await self._put(conn, customer, source)

    async def put_many(self, batch: Sequence[Customer], source: str) -> None:
        """Add or replace every customer of ``batch`` in one transaction (all or none)."""
        async with self._engine.begin() as conn:
            for customer in batch:
                await self._put(conn, customer, source)

    async def apply(self, changes: Sequence[Customer | str], source: str) -> None:
        """Puts (a customer) and removals (a user id), in order, in one transaction."""
        async with self._engine.begin() as conn:
            for change in changes:
                if isinstance(change, str):
                    await self._remove(conn, change)
                else:
                    await self._put(conn, change, source)

    async def remove(self, user_id: str) -> bool:
        async with self._engine.begin() as conn:
            return await self._remove(conn, user_id)

    async def _remove(self, conn: AsyncConnection, user_id: str) -> bool:
        await conn.execute(delete(handles).where(handles.c.user_id == user_id))
        result = await conn.execute(delete(customers).where(customers.c.user_id == user_id))
        return bool(result.rowcount)

    async def _put(self, conn: AsyncConnection, customer: Customer, source: str) -> None:
        email, handle_keys = normalise_email(customer.email), _handle_keys(customer)
        await self._refuse_taken_keys(conn, customer, email, handle_keys)
        await conn.execute(delete(handles).where(handles.c.user_id == customer.user_id))
        await conn.execute(delete(customers).where(customers.c.user_id == customer.user_id))
        row = {"user_id": customer.user_id, "email_key": email, "phone": customer.phone, "entry": _entry(customer)}
        await conn.execute(insert(customers), [{**row, "source": source, "updated_at": datetime.now(UTC)}])
        if handle_keys:
            await conn.execute(insert(handles), [{"handle_key": h, "user_id": customer.user_id} for h in handle_keys])

    async def _refuse_taken_keys(
        self, conn: AsyncConnection, customer: Customer, email: str | None, handle_keys: list[str]
    ) -> None:
        others = customers.c.user_id != customer.user_id
        checks = [("email", customers.c.email_key, email), ("phone", customers.c.phone, customer.phone)]
        for how, column, value in checks:
            if value is not None:
                holder = (await conn.execute(select(customers.c.entry).where(column == value, others))).scalar()
                if holder is not None:
                    raise DuplicateCustomer(how, value, _customer(holder))  # type: ignore[arg-type]
        if handle_keys:
            query = (
                select(handles.c.handle_key, customers.c.entry)
                .join(customers)
                .where(handles.c.handle_key.in_(handle_keys), handles.c.user_id != customer.user_id)
            )
            if (taken := (await conn.execute(query)).first()) is not None:
                raise DuplicateCustomer("social_handle", taken.handle_key, _customer(taken.entry))

    # --- reading -----------------------------------------------------------------

    async def get(self, user_id: str) -> Customer | None:
        async with self._engine.connect() as conn:
            entry = (await conn.execute(select(customers.c.entry).where(customers.c.user_id == user_id))).scalar()
        return _customer(entry) if entry is not None else None

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(customers))).scalar_one())

    async def directory_for(self, contacts: Iterable[ContactDetails]) -> Directory:
        """The customers any of ``contacts`` could be, as a directory to identify them in."""
        ids, emails, phones, handle_keys = set(), set(), set(), set()
        for contact in contacts:
            ids.add((contact.user_id or "").strip())
            emails.add(normalise_email(contact.email))
            phones.add(normalise_phone(contact.phone, self._region))
            handle_keys.add(normalise_handle(contact.social_handle))
        for keys in (ids, emails, phones, handle_keys):
            keys.discard(None)
            keys.discard("")
        async with self._engine.connect() as conn:
            if handle_keys:
                owners = select(handles.c.user_id).where(handles.c.handle_key.in_(handle_keys))
                ids |= set((await conn.execute(owners)).scalars())
            if not (ids or emails or phones):
                return Directory()
            query = select(customers.c.entry).where(
                or_(customers.c.user_id.in_(ids), customers.c.email_key.in_(emails), customers.c.phone.in_(phones))
            )
            return Directory.of(_customer(entry) for entry in (await conn.execute(query)).scalars())


def _handle_keys(customer: Customer) -> list[str]:
    return list(dict.fromkeys(filter(None, map(normalise_handle, customer.social_handles))))


def _entry(customer: Customer) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(customer).items()}


def _customer(entry: dict[str, Any]) -> Customer:
    fields = {f.name for f in dataclasses.fields(Customer)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items() if k in fields}
    return Customer(**values)
