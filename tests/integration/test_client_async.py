"""The async client against the real ticket service: the same calls as the sync one, awaited."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from helpdesk_client import AsyncHelpdeskClient, ConflictError, NotFound, Unauthorized

from tests.support.ticket_service_http import TicketService


@pytest.fixture
async def desk(ticket_service: TicketService) -> AsyncIterator[AsyncHelpdeskClient]:
    async with AsyncHelpdeskClient(ticket_service.url, token=ticket_service.token("alice", ("agent", "lead"))) as c:
        yield c


def a_queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


async def opened(service: TicketService, count: int, **kwargs: object) -> list[str]:
    return await asyncio.to_thread(service.open_tickets, count, **kwargs)  # type: ignore[arg-type]


async def test_reading_pages_searching_and_queues(ticket_service: TicketService, desk: AsyncHelpdeskClient) -> None:
    queue, word = a_queue(), f"modem{uuid.uuid4().hex[:6]}"
    numbers = await opened(ticket_service, 30, queue=queue, subject=f"Dead {word}")
    listed = [t.number async for t in desk.list_tickets(queue=queue, page_size=7)]
    assert sorted(listed) == sorted(numbers) and len(listed) == 30
    assert sorted([t.number async for t in desk.search(word, page_size=10)]) == sorted(numbers)
    assert {q.queue: q.depth for q in await desk.queues()}[queue] == 30
    assert len(await desk.queue_line(queue, limit=5)) == 5
    ticket = await desk.get_ticket(numbers[0])
    assert (await desk.get_ticket(numbers[0], as_of=ticket.history[0].occurred_at)).version == 1
    assert (await desk.deadlines(numbers[0])).deadlines == []
    with pytest.raises(NotFound):
        await desk.get_ticket("HD-999999")


async def test_working_tickets_with_every_write(ticket_service: TicketService, desk: AsyncHelpdeskClient) -> None:
    queue = a_queue()
    first, second, third = await opened(ticket_service, 3, queue=queue)
    taken = await desk.take_next(queue)
    assert taken is not None and taken.number == first
    with pytest.raises(ConflictError) as stale:
        await desk.add_note(first, "late", expected_version=3)
    assert stale.value.current_version == taken.version
    await desk.add_note(first, "on it", expected_version=taken.version)
    await desk.change_status(first, "waiting_on_third_party")
    await desk.change_priority(first, 2, "VIP")
    await desk.move_queue(first, a_queue(), "belongs elsewhere")
    await desk.resolve(first, "fixed")
    await desk.reopen(first, "not fixed")
    await desk.resolve(first, "fixed for real")
    assert (await desk.close_ticket(first)).status == "closed"
    await desk.claim(second)
    assert (await desk.release(second)).assignee is None
    assert [(x.kind, x.number) for x in (await desk.link(second, third, "relates_to")).links] == [("relates_to", third)]
    assert (await desk.unlink(second, third, "relates_to")).links == []
    assert (await desk.merge(second, third, "duplicate")).status == "merged"
    head = await desk.take_next(queue)  # the merged one left the line; the one it went into waits
    assert head is not None and head.number == third
    assert await desk.take_next(queue) is None


async def test_a_refused_token_raises_unauthorized(
    ticket_service: TicketService,
) -> None:
    async with AsyncHelpdeskClient(ticket_service.url, token="not-a-token") as stranger:
        with pytest.raises(Unauthorized):
            await stranger.queues()
