"""The asynchronous client: ``AsyncHelpdeskClient(url, token=...)``, the same methods as HelpdeskClient, awaited.

list_tickets, search and stream are async iterators (``async for``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any, Self

import httpx

from helpdesk_client import calls
from helpdesk_client.calls import Call
from helpdesk_client.errors import TransportError, error_for
from helpdesk_client.models import (
    QueueSummary,
    StreamEvent,
    TicketDeadlines,
    TicketDetail,
    TicketView,
)
from helpdesk_client.retry import (
    DEFAULT_RETRIES,
    RETRY_STATUSES,
    RetryPolicy,
    next_delay,
)
from helpdesk_client.session import (
    DEFAULT_URL,
    STREAM_MAX_FAILURES,
    auth_headers,
    reconnect_delay,
    stream_headers,
    stream_timeout,
)
from helpdesk_client.sse import EventStreamParser

Ref = str | uuid.UUID


class AsyncHelpdeskClient:
    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        api_key: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy = DEFAULT_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=auth_headers(token, api_key),
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    # Reading

    async def get_ticket(self, ref: Ref, as_of: datetime | None = None) -> TicketDetail:
        """The ticket with its whole timeline; with ``as_of``, as it stood then."""
        return await self._send(calls.get_ticket(str(ref), as_of))

    async def list_tickets(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[TicketView]:
        """Every ticket matching the filters, newest first, fetching page after page as you iterate.

        Filters: status, queue, priority, assignee, customer, channel, channel_message_id,
        opened_after, opened_before, updated_after, updated_before (aware datetimes), q (text).
        """
        cursor: str | None = None
        while True:
            page = await self._send(calls.list_page(filters, cursor, page_size))
            for ticket in page.tickets:
                yield ticket
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def search(self, text: str, *, page_size: int = 100, **filters: Any) -> AsyncIterator[TicketView]:
        """Tickets whose subject, description or public notes contain ``text``."""
        return self.list_tickets(page_size=page_size, q=text, **filters)

    async def queues(self) -> list[QueueSummary]:
        return await self._send(calls.queues())

    async def queue_line(self, queue: str, limit: int = 50) -> list[TicketView]:
        """The queue's line: its unclaimed tickets in the order to take them, and those escalated to it
        that someone already owns (their ``assignee`` says who)."""
        return await self._send(calls.queue_line(queue, limit))

    async def deadlines(self, ref: Ref) -> TicketDeadlines:
        return await self._send(calls.deadlines(str(ref)))

    # Working a ticket

    async def take_next(self, queue: str) -> TicketDetail | None:
        """Claim the ticket at the head of the queue's line; None when nobody is waiting."""
        return await self._send(calls.take_next(queue))

    async def claim(self, ref: Ref, *, expected_version: int | None = None) -> TicketDetail:
        return await self._send(calls.claim(str(ref), expected_version))

    async def release(self, ref: Ref, *, expected_version: int | None = None) -> TicketDetail:
        return await self._send(calls.release(str(ref), expected_version))

    async def add_note(
        self,
        ref: Ref,
        text: str,
        public: bool = False,
        *,
        expected_version: int | None = None,
    ) -> TicketDetail:
        """An internal note, or a public one (e-mailed to the customer; a customer's is a reply)."""
        return await self._send(calls.add_note(str(ref), text, public, expected_version))

    async def change_status(
        self, ref: Ref, status: calls.Status, *, expected_version: int | None = None
    ) -> TicketDetail:
        return await self._send(calls.change_status(str(ref), status, expected_version))

    async def assign(
        self, ref: Ref, agent_id: str, reason: str = "", *, expected_version: int | None = None
    ) -> TicketDetail:
        """Give the ticket to ``agent_id`` (a team lead's token), taking it from its owner if it has one."""
        return await self._send(calls.assign(str(ref), agent_id, reason, expected_version))

    async def change_priority(
        self,
        ref: Ref,
        priority: int,
        reason: str,
        *,
        expected_version: int | None = None,
    ) -> TicketDetail:
        return await self._send(calls.change_priority(str(ref), priority, reason, expected_version))

    async def move_queue(
        self, ref: Ref, queue: str, reason: str, *, expected_version: int | None = None
    ) -> TicketDetail:
        return await self._send(calls.move_queue(str(ref), queue, reason, expected_version))

    async def resolve(self, ref: Ref, resolution: str, *, expected_version: int | None = None) -> TicketDetail:
        return await self._send(calls.resolve(str(ref), resolution, expected_version))

    async def close_ticket(self, ref: Ref, *, expected_version: int | None = None) -> TicketDetail:
        """Close a resolved ticket (named so, as close() closes the client's connections)."""
        return await self._send(calls.close(str(ref), expected_version))

    async def reopen(self, ref: Ref, reason: str, *, expected_version: int | None = None) -> TicketDetail:
        return await self._send(calls.reopen(str(ref), reason, expected_version))

    async def merge(self, ref: Ref, into: Ref, reason: str, *, expected_version: int | None = None) -> TicketDetail:
        """Merge ``ref`` into ``into``; answers the merged (source) ticket."""
        return await self._send(calls.merge(str(ref), str(into), reason, expected_version))

    async def link(
        self,
        ref: Ref,
        target: Ref,
        kind: calls.LinkKind,
        *,
        expected_version: int | None = None,
    ) -> TicketDetail:
        return await self._send(calls.link(str(ref), str(target), kind, expected_version))

    async def unlink(
        self,
        ref: Ref,
        target: Ref,
        kind: calls.LinkKind,
        *,
        expected_version: int | None = None,
    ) -> TicketDetail:
        return await self._send(calls.unlink(str(ref), str(target), kind, expected_version))

    # The live stream

    async def stream(
        self,
        queue: str | Iterable[str] | None = None,
        ticket: Ref | None = None,
        last_event_id: str | None = None,
        *,
        max_failures: int = STREAM_MAX_FAILURES,
    ) -> AsyncIterator[StreamEvent]:
        """Ticket events as they happen (after ``last_event_id`` if given), forever.

        A dropped connection is reopened, resuming after the last event seen; it
        gives up (TransportError) after ``max_failures`` reconnections in a row fail.
        """
        parser = EventStreamParser(last_event_id=last_event_id)
        params = calls.stream_params(queue, str(ticket) if ticket else None)
        failures = 0
        while True:
            try:
                async with self._http.stream(
                    "GET",
                    "/v1/stream",
                    params=params,
                    headers=stream_headers(parser.last_event_id),
                    timeout=stream_timeout(self._timeout),
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        if response.status_code not in RETRY_STATUSES:
                            raise error_for(response)
                    else:
                        async for line in response.aiter_lines():
                            failures = 0
                            event = parser.feed(line)
                            if event is not None:
                                yield event
            except httpx.TransportError as error:
                cause: Exception = error
            else:
                cause = TransportError("the stream ended")
            parser = EventStreamParser(last_event_id=parser.last_event_id, retry_ms=parser.retry_ms)
            failures += 1
            if failures > max_failures:
                raise TransportError(f"the stream could not be resumed: {cause!r}") from cause
            await asyncio.sleep(reconnect_delay(self.retry, parser, failures))

    async def _send(self, call: Call) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    json=call.body,
                    headers=call.headers,
                )
            except httpx.TransportError as error:
                delay = next_delay(self.retry, call, attempt, error=error)
                if delay is None:
                    why = str(error) or type(error).__name__
                    raise TransportError(
                        f"no answer from {self._http.base_url} ({call.method} {call.path}): {why}"
                    ) from error
                await asyncio.sleep(delay)
                continue
            if response.status_code < 400:
                return call.read(response)
            delay = next_delay(self.retry, call, attempt, response=response)
            if delay is None:
                raise error_for(response)
            await asyncio.sleep(delay)
