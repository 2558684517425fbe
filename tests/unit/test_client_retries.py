"""Which failed calls the client sends again: reads, and writes that cannot act twice.

A stand-in server (httpx.MockTransport) answers as a restarting server or a
proxy would; the real service is exercised by the integration tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from helpdesk_client import HelpdeskClient, RetryPolicy, ServerError, TransportError
from helpdesk_client.calls import Call, add_note, claim, get_ticket, take_next
from helpdesk_client.retry import next_delay

FAST = RetryPolicy(attempts=3, backoff_s=0.001, max_backoff_s=0.001)
TICKET = {
    "ticket_id": "8d0d3f8e-4a2b-4b8e-9a55-2f1b3c4d5e6f",
    "number": "HD-1",
    "version": 4,
    "status": "in_progress",
    "subject": "s",
    "description": "d",
    "channel": "email",
    "channel_message_id": "m",
    "customer": {},
    "components": [],
    "priority": 3,
    "queue": "q",
    "level": 1,
    "assignee": "alice",
    "opened_at": "2025-03-01T09:30:00Z",
    "updated_at": "2025-03-01T09:31:00Z",
    "resolution": None,
    "resolved_by": None,
    "flags": [],
    "history": [],
}


def server(
    *answers: httpx.Response | type[Exception],
) -> tuple[list[httpx.Request], Callable[..., HelpdeskClient]]:
    """A server answering with ``answers`` in turn; the requests it got."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, type):
            raise answer("down", request=request)
        return answer

    def client() -> HelpdeskClient:
        return HelpdeskClient("http://desk", token="t", retry=FAST, transport=httpx.MockTransport(handle))

    return seen, client


def test_a_read_is_retried_after_a_dropped_connection_and_a_503() -> None:
    seen, client = server(httpx.ReadError, httpx.Response(503), httpx.Response(200, json=TICKET))
    assert client().get_ticket("HD-1").number == "HD-1"
    assert len(seen) == 3


def test_a_write_with_an_expected_version_is_retried_as_it_cannot_apply_twice() -> None:
    seen, client = server(httpx.Response(502), httpx.Response(200, json=TICKET))
    client().claim("HD-1", expected_version=3)
    assert [r.headers["if-match"] for r in seen] == ['"3"', '"3"']


def test_a_write_that_could_apply_twice_is_not_retried_once_it_may_have_reached_the_server() -> None:
    seen, client = server(httpx.Response(503), httpx.Response(200, json=TICKET))
    with pytest.raises(ServerError):
        client().add_note("HD-1", "hello")
    assert len(seen) == 1
    seen, client = server(httpx.ReadError, httpx.Response(200, json=TICKET))
    with pytest.raises(TransportError):
        client().add_note("HD-1", "hello")
    assert len(seen) == 1


def test_any_call_is_retried_when_the_connection_was_refused() -> None:
    seen, client = server(httpx.ConnectError, httpx.Response(200, json=TICKET))
    assert client().add_note("HD-1", "hello").number == "HD-1"
    assert json.loads(seen[1].content) == {"text": "hello", "visibility": "internal"}


def test_retries_stop_after_the_policys_attempts() -> None:
    seen, client = server(httpx.Response(503), httpx.Response(503), httpx.Response(503))
    with pytest.raises(ServerError):
        client().queues()
    assert len(seen) == FAST.attempts


@pytest.mark.parametrize(
    ("call", "status", "retried"),
    [
        (get_ticket("HD-1"), 504, True),
        (
            get_ticket("HD-1"),
            500,
            False,
        ),  # the server decided; asking again decides the same
        (get_ticket("HD-1"), 404, False),
        (claim("HD-1", 3), 503, True),
        (claim("HD-1", None), 503, False),
        (take_next("q"), 503, False),  # could take two tickets
        (add_note("HD-1", "x", False, None), 502, False),
    ],
)
def test_which_answers_are_retried(call: Call, status: int, retried: bool) -> None:
    assert (next_delay(FAST, call, 1, response=httpx.Response(status)) is not None) is retried


def test_retry_after_is_honoured_up_to_the_longest_backoff() -> None:
    policy = RetryPolicy(backoff_s=0.1, max_backoff_s=2.0)
    assert policy.delay(1, httpx.Response(503, headers={"Retry-After": "1"})) == 1.0
    assert policy.delay(1, httpx.Response(503, headers={"Retry-After": "60"})) == 2.0
    assert 0.05 <= policy.delay(1) <= 0.1 and policy.delay(10) <= 2.0
