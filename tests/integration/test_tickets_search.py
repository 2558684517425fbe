"""Searching tickets (``?q=``) on real SQLite and PostgreSQL: every test runs on both.

PostgreSQL answers from its full-text index, SQLite with LIKE per word; the
behaviour an agent relies on is the same on both, and is what is proven here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from contracts.envelope import new_envelope
from contracts.incidents import (
    Channel,
    CustomerProfile,
    IncidentIdentified,
    IncidentIdentifiedData,
)
from services.tickets.adapters import event_store, read_model, repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.repository import Change
from services.tickets.domain import open_ticket


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[TicketDatabase]:
    database = TicketDatabase(database_url)
    await database.create_tables()
    yield database
    await database.close()


async def opened(db: TicketDatabase, subject: str, description: str = "") -> str:
    """Open a ticket with this subject and description; returns its number."""
    ticket_id = uuid.uuid4()
    data = IncidentIdentifiedData(
        channel=Channel.EMAIL,
        channel_message_id=f"m-{ticket_id}",
        received_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
        subject=subject,
        description=description,
        customer=CustomerProfile(identified=False, email="x@example.com"),
    )
    cause = new_envelope(IncidentIdentified, data, correlation_id=f"corr-{ticket_id}")
    async with db.writer.begin() as conn:
        number = (await event_store.allocate_numbers(conn, [ticket_id]))[ticket_id]
        events = repository.recorded(ticket_id, [open_ticket(number, data)], at=datetime.now(UTC), cause=cause)
        await repository.save(conn, [Change.of(None, events)])
    return number


async def noted(db: TicketDatabase, number: str, text: str, visibility: str) -> None:
    async with db.writer.begin() as conn:
        ticket_id = await event_store.ticket_id_for_number(conn, number)
        before = (await repository.load(conn, [ticket_id]))[ticket_id]  # type: ignore[list-item]
        events = repository.recorded(
            before.ticket.ticket_id,
            before.ticket.add_note("alice", text, visibility),
            at=datetime.now(UTC),
            correlation_id=before.correlation_id,
        )
        await repository.save(conn, [Change.of(before.ticket, events)])


async def found(db: TicketDatabase, text: str) -> set[str]:
    async with db.reader.connect() as conn:
        rows = await read_model.list_tickets(conn, read_model.TicketQuery(text=text))
    return {r["number"] for r in rows}


async def test_a_word_of_the_subject_or_the_description_finds_the_ticket(db: TicketDatabase) -> None:
    printer = await opened(db, "Printer jammed on floor 3", "Paper stuck in tray two")
    await opened(db, "VPN drops every hour", "Reconnecting works for a while")
    assert await found(db, "jammed") == {printer}
    assert await found(db, "tray") == {printer}


async def test_public_notes_are_searched_and_internal_notes_never(db: TicketDatabase) -> None:
    ticket = await opened(db, "Laptop will not boot")
    await noted(db, ticket, "Replacement motherboard ordered", "public")
    await noted(db, ticket, "Customer was rude on the phone", "internal")
    assert await found(db, "motherboard") == {ticket}
    assert await found(db, "rude") == set()


async def test_every_word_of_the_query_must_appear_in_any_order(db: TicketDatabase) -> None:
    both = await opened(db, "Outlook crashes", "Since the update Outlook crashes when opening attachments")
    await opened(db, "Outlook is slow", "Takes minutes to start")
    await opened(db, "Excel crashes", "On every save")
    assert await found(db, "crashes outlook") == {both}
    assert await found(db, "outlook crashes attachments") == {both}


async def test_case_and_accents_do_not_matter_on_either_side(db: TicketDatabase) -> None:
    ticket = await opened(db, "Résumé upload fails for Zoë", "The CAFÉ kiosk shows an error")
    assert await found(db, "resume") == {ticket}
    assert await found(db, "ZOE") == {ticket}
    assert await found(db, "café kiosk") == {ticket}
    assert await found(db, "RÉSUMÉ") == {ticket}


async def test_the_last_word_being_typed_matches_as_a_prefix(db: TicketDatabase) -> None:
    ticket = await opened(db, "Network printer unreachable")
    assert await found(db, "network unreach") == {ticket}
    assert await found(db, "netw") == {ticket}


async def test_a_word_after_a_minus_excludes_the_tickets_that_have_it(db: TicketDatabase) -> None:
    vpn_home = await opened(db, "VPN fails at home")
    await opened(db, "VPN fails in the office")
    assert await found(db, "vpn -office") == {vpn_home}


@pytest.mark.parametrize(
    "query",
    ["!!!", "'; DROP TABLE tickets; --", "a & b | !c <-> (d", '"unclosed', "%_\\", "e-mail: x@y.com :* ((", "-", "or"],
)
async def test_a_query_full_of_punctuation_is_answered_without_error(db: TicketDatabase, query: str) -> None:
    ticket = await opened(db, "E-mail to x@y.com bounces", "Mail server says 550")
    result = await found(db, query)
    assert result <= {ticket}


async def test_a_query_with_no_word_in_it_finds_nothing(db: TicketDatabase) -> None:
    await opened(db, "Anything at all", "100% broken!!!")
    assert await found(db, "!!! %%% ...") == set()


async def test_search_narrows_the_other_filters_and_keeps_newest_first(db: TicketDatabase) -> None:
    first = await opened(db, "Badge reader broken at entrance A")
    second = await opened(db, "Badge reader broken at entrance B")
    await opened(db, "Coffee machine broken")
    async with db.reader.connect() as conn:
        rows = await read_model.list_tickets(conn, read_model.TicketQuery(text="badge broken"))
        page = await read_model.list_tickets(conn, read_model.TicketQuery(text="broken", limit=1))
    assert [r["number"] for r in rows] == [second, first]  # newest first
    assert len(page) == 1
