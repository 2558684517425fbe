"""When a failed call is sent again, and how long to wait first.

Retried: connection failures and 502/503/504 answers (a proxy or a restarting
server), never an answer the server decided on (4xx, 500). A call whose
repeat could act twice (a note, take-next) is retried only when the request
surely never reached the server: the connection could not even be opened.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from helpdesk_client.calls import Call

RETRY_STATUSES = frozenset({502, 503, 504})
# Raised before a single byte of the request was sent.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff_s: float = 0.2
    max_backoff_s: float = 5.0

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``: exponential, jittered, or as Retry-After says."""
        retry_after = response.headers.get("retry-after", "") if response is not None else ""
        if retry_after.isdigit():
            return min(float(retry_after), self.max_backoff_s)
        base = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
        return base * random.uniform(0.5, 1.0)


DEFAULT_RETRIES = RetryPolicy()
NO_RETRIES = RetryPolicy(attempts=1)


def may_repeat_after_error(call: Call, error: httpx.TransportError) -> bool:
    return isinstance(error, NOT_SENT) or call.repeatable


def may_repeat_after_answer(call: Call, response: httpx.Response) -> bool:
    return response.status_code in RETRY_STATUSES and call.repeatable


def next_delay(
    policy: RetryPolicy,
    call: Call,
    attempt: int,
    *,
    error: httpx.TransportError | None = None,
    response: httpx.Response | None = None,
) -> float | None:
    """Seconds to wait before sending ``call`` again after failed attempt ``attempt``; None: do not."""
    if attempt >= policy.attempts:
        return None
    if error is not None and may_repeat_after_error(call, error):
        return policy.delay(attempt)
    if response is not None and may_repeat_after_answer(call, response):
        return policy.delay(attempt, response)
    return None
