"""The live stream: ticket events as they happen, resumed after the server drops the connection.

The server is killed (SIGKILL: no goodbye on the socket) and started again
while the client is reading; the client must reconnect by itself and go on
after the last event it saw, with nothing lost and nothing repeated. (The
shared service is restarted in place: the tests after it find it running.)
"""

from __future__ import annotations

import asyncio
import queue
import threading
import uuid

from helpdesk_client import AsyncHelpdeskClient, HelpdeskClient, RetryPolicy, StreamEvent

from tests.support.ticket_service_http import TicketService

WAIT_S = 60.0
# Reconnect every half second at most, long enough for the server to start again.
PATIENT = RetryPolicy(backoff_s=0.1, max_backoff_s=0.5)
RECONNECTS = 200
OPENING = ["ticket.opened", "ticket.prioritised", "ticket.routed"]


def a_queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


def test_a_stream_replays_after_an_event_id_then_follows_live(
    ticket_service: TicketService,
) -> None:
    queue_name = a_queue()
    first = ticket_service.open_ticket(queue=queue_name)
    ticket_service.open_ticket(queue=a_queue())  # another queue: not in this stream
    with HelpdeskClient(ticket_service.url, token=ticket_service.token()) as desk:
        events = desk.stream(queue=queue_name, last_event_id="0")
        replayed = [next(events) for _ in OPENING]
        assert [(e.number, e.type) for e in replayed] == [(first, t) for t in OPENING]
        assert replayed[0].data["type"] == "ticket.opened" and replayed[0].data["data"]["number"] == first
        desk.claim(first)
        claimed = next(events)
        assert (claimed.number, claimed.type) == (first, "ticket.claimed")
        assert int(claimed.id or 0) > int(replayed[-1].id or 0)
        events.close()
        again = desk.stream(ticket=first, last_event_id=replayed[-1].id)
        assert next(again).id == claimed.id  # resumes right after the id given
        again.close()


def test_the_sync_stream_resumes_after_the_server_is_killed_and_restarted(
    ticket_service: TicketService,
) -> None:
    queue_name = a_queue()
    before = ticket_service.open_ticket(queue=queue_name)
    seen: queue.Queue[StreamEvent | BaseException] = queue.Queue()
    desk = HelpdeskClient(ticket_service.url, token=ticket_service.token(), retry=PATIENT)

    def read() -> None:
        try:
            for event in desk.stream(queue=queue_name, last_event_id="0", max_failures=RECONNECTS):
                seen.put(event)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            seen.put(error)

    threading.Thread(target=read, daemon=True).start()
    try:
        first = [taken(seen) for _ in OPENING]
        with ticket_service.down():
            after = ticket_service.open_ticket(queue=queue_name)  # while it is down
        then = [taken(seen) for _ in OPENING]
    finally:
        # The reader ends at its next read (the next keep-alive at the latest): a closed
        # client does not reconnect. Nothing waits for it.
        desk.close()
    assert [(e.number, e.type) for e in first + then] == [(before, t) for t in OPENING] + [(after, t) for t in OPENING]
    ids = [int(e.id or 0) for e in first + then]
    assert ids == sorted(set(ids))  # nothing repeated, in log order


async def test_the_async_stream_resumes_after_the_server_is_killed_and_restarted(
    ticket_service: TicketService,
) -> None:
    queue_name = a_queue()
    before = await asyncio.to_thread(ticket_service.open_ticket, queue=queue_name)
    async with AsyncHelpdeskClient(ticket_service.url, token=ticket_service.token(), retry=PATIENT) as desk:
        events = desk.stream(queue=queue_name, last_event_id="0", max_failures=RECONNECTS)
        first = [await asyncio.wait_for(anext(events), WAIT_S) for _ in OPENING]
        await asyncio.to_thread(ticket_service.kill)
        try:
            after = await asyncio.to_thread(ticket_service.open_ticket, queue=queue_name)
        finally:
            await asyncio.to_thread(ticket_service.start)
        then = [await asyncio.wait_for(anext(events), WAIT_S) for _ in OPENING]
        await events.aclose()
    assert [(e.number, e.type) for e in first + then] == [(before, t) for t in OPENING] + [(after, t) for t in OPENING]


def taken(seen: queue.Queue[StreamEvent | BaseException]) -> StreamEvent:
    item = seen.get(timeout=WAIT_S)
    if isinstance(item, BaseException):
        raise item
    return item
