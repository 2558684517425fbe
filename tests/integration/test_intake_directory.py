"""The customer directory in intake's database, and its HTTP API (on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from contracts.incidents import ContactDetails
from services.intake.adapters.directory_store import DirectoryStore
from services.intake.api_keys import READ_DIRECTORY, WRITE_DIRECTORY, ApiKeys
from services.intake.customers_api import customers_router
from services.intake.domain import Customer, DuplicateCustomer, identify

ADA = Customer(
    user_id="u-1", name="Ada Lovelace", email="Ada@Example.com", phone="+442079460018",
    social_handles=("@ada_l",), department="Finance", vip=True, hardware=("ThinkPad",),
)  # fmt: skip


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[DirectoryStore]:
    store = DirectoryStore(database_url, "GB")
    await store.create_tables()
    try:
        yield store
    finally:
        await store.close()


async def test_a_stored_customer_is_found_by_every_key_a_contact_may_carry(store: DirectoryStore) -> None:
    await store.put(ADA, source="test")
    for contact in (
        ContactDetails(user_id="u-1"),
        ContactDetails(email=" ada@EXAMPLE.com"),
        ContactDetails(phone="020 7946 0018"),
        ContactDetails(social_handle="ADA_L"),
    ):
        directory = await store.directory_for([contact, ContactDetails(email="someone@else.example")])
        profile = identify(directory, contact, "GB")
        assert (profile.identified, profile.customer_id, profile.vip) == (True, "u-1", True), contact
    assert len(await store.directory_for([ContactDetails(phone="+1 202 555 0147")])) == 0


async def test_a_put_replaces_the_entry_and_frees_its_old_keys(store: DirectoryStore) -> None:
    await store.put(ADA, source="test")
    await store.put(Customer(user_id="u-1", name="Ada King", email="ada.king@example.com"), source="test")
    assert (await store.get("u-1")).name == "Ada King"  # type: ignore[union-attr]
    assert len(await store.directory_for([ContactDetails(social_handle="@ada_l")])) == 0
    await store.put(
        Customer(user_id="u-2", name="Someone", social_handles=("@ada_l",), phone="+442079460018"), source="test"
    )
    assert await store.count() == 2


async def test_two_customers_cannot_share_an_email_phone_or_handle(store: DirectoryStore) -> None:
    await store.put(ADA, source="test")
    for other in (
        Customer(user_id="u-9", name="X", email="ADA@example.com"),
        Customer(user_id="u-9", name="X", phone="+442079460018"),
        Customer(user_id="u-9", name="X", social_handles=("ada_l",)),
    ):
        with pytest.raises(DuplicateCustomer, match="already used by customer 'u-1'"):
            await store.put(other, source="test")
    assert await store.count() == 1


async def test_a_removed_customer_is_no_longer_identified(store: DirectoryStore) -> None:
    await store.put(ADA, source="test")
    assert await store.remove("u-1") and not await store.remove("u-1")
    assert await store.get("u-1") is None
    assert len(await store.directory_for([ContactDetails(social_handle="@ada_l")])) == 0


async def test_the_customers_api_puts_gets_and_deletes(store: DirectoryStore) -> None:
    app = FastAPI()
    anyone = ApiKeys.open_to_anyone()
    app.include_router(customers_router(store, "GB", anyone.require(READ_DIRECTORY), anyone.require(WRITE_DIRECTORY)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        entry = {"name": "Grace Hopper", "email": "grace@example.com", "phone": "07700 900123", "vip": True,
                 "language": "DE"}  # fmt: skip
        created = await client.put("/v1/customers/u-2", json=entry)
        assert created.status_code == 201, created.text
        assert (created.json()["phone"], created.json()["language"]) == ("+447700900123", "de")
        assert (await client.put("/v1/customers/u-2", json={**entry, "department": "Eng"})).status_code == 200
        got = await client.get("/v1/customers/u-2")
        assert got.status_code == 200 and got.json()["department"] == "Eng"

        clash = await client.put("/v1/customers/u-3", json={"name": "Other", "email": "GRACE@example.com"})
        assert clash.status_code == 409 and "already used by customer 'u-2'" in clash.json()["detail"]
        bad = await client.put("/v1/customers/u-3", json={"name": "", "phone": "call reception", "shoe": 42})
        assert bad.status_code == 422
        assert {e["field"] for e in bad.json()["errors"]} == {"name", "shoe"}
        bad_phone = await client.put("/v1/customers/u-3", json={"name": "X", "phone": "call reception"})
        assert bad_phone.status_code == 422 and "not a phone number" in bad_phone.json()["detail"]
        other_id = await client.put("/v1/customers/u-3", json={"user_id": "u-4", "name": "X"})
        assert other_id.status_code == 422
        assert (await client.put("/v1/customers/u-3", content=b"{nope")).status_code == 400

        assert (await client.delete("/v1/customers/u-2")).status_code == 204
        assert (await client.get("/v1/customers/u-2")).status_code == 404
        assert (await client.delete("/v1/customers/u-2")).status_code == 404
