"""What both clients share: where the server is, the credentials, and the stream's reconnection rules."""

from __future__ import annotations

import httpx

from helpdesk_client.errors import HelpdeskError
from helpdesk_client.retry import RetryPolicy
from helpdesk_client.sse import EventStreamParser

DEFAULT_URL = "http://127.0.0.1:8002"
USER_AGENT = "helpdesk-client/0.1"
# The server sends a keep-alive comment every 15 s: three missed ones mean the connection is dead.
STREAM_READ_TIMEOUT_S = 45.0
# Consecutive failed (re)connections before stream() gives up.
STREAM_MAX_FAILURES = 10


def auth_headers(token: str | None, api_key: str | None) -> dict[str, str]:
    """An agent's (or customer's) bearer token, or an integration's API key."""
    if token and api_key:
        raise HelpdeskError("give a token or an API key, not both")
    headers = {"User-Agent": USER_AGENT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if api_key:
        headers["X-API-Key"] = api_key
    return headers


def stream_timeout(timeout: float) -> httpx.Timeout:
    return httpx.Timeout(timeout, read=STREAM_READ_TIMEOUT_S)


def stream_headers(last_event_id: str | None) -> dict[str, str]:
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    return headers


def reconnect_delay(policy: RetryPolicy, parser: EventStreamParser, failures: int) -> float:
    """The first reconnection waits what the server asked (``retry:``); the next ones back off."""
    if parser.retry_ms is not None and failures == 1:
        return parser.retry_ms / 1000
    return policy.delay(failures)
