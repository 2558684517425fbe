"""The stream reconnects by itself and resumes after the last event id it saw.

A stand-in server ends each connection early; the real service's restart is
covered by tests/integration/test_client_stream.py.
"""

from __future__ import annotations

import json

import httpx
import pytest
from helpdesk_client import HelpdeskClient, NotFound, RetryPolicy, TransportError

FAST = RetryPolicy(attempts=3, backoff_s=0.001, max_backoff_s=0.001)


def event(position: int, number: str) -> str:
    data = json.dumps({"type": "ticket.claimed", "data": {"number": number}})
    return f"id: {position}\nevent: ticket.claimed\ndata: {data}\n\n"


def test_a_dropped_stream_is_reopened_after_the_last_event_seen() -> None:
    bodies = [
        ": keep-alive\n\n" + event(5, "HD-1") + 'id: 6\ndata: {"half": ',  # cut mid-event
        event(6, "HD-2"),
    ]
    asked: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, text=bodies.pop(0), headers={"content-type": "text/event-stream"})

    with HelpdeskClient("http://desk", token="t", retry=FAST, transport=httpx.MockTransport(handle)) as desk:
        events = desk.stream(queue=["network", "hardware"], last_event_id="4")
        got = [next(events), next(events)]
    assert [(e.id, e.number) for e in got] == [
        ("5", "HD-1"),
        ("6", "HD-2"),
    ]  # the half event is dropped
    assert [r.headers["last-event-id"] for r in asked] == ["4", "5"]
    assert asked[0].url.params.get_list("queue") == ["network", "hardware"]


def test_a_refused_stream_raises_at_once_and_an_unreachable_one_gives_up() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404,
            json={
                "type": "urn:helpdesk:problem:ticket-not-found",
                "status": 404,
                "detail": "no",
            },
        )

    with (
        HelpdeskClient("http://desk", token="t", transport=httpx.MockTransport(refuse)) as desk,
        pytest.raises(NotFound),
    ):
        next(desk.stream(ticket="HD-404"))

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with (
        HelpdeskClient("http://desk", token="t", retry=FAST, transport=httpx.MockTransport(down)) as desk,
        pytest.raises(TransportError),
    ):
        next(desk.stream(max_failures=3))
