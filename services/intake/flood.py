"""The flood guard: no more than so many contacts per sender in a window (pure).

A mail loop (an auto-responder answering our acknowledgement), a stuck
integration or a spam burst would otherwise open thousands of tickets. Each
channel adapter asks before it publishes; a sender over the limit is refused
(SMTP 550, HTTP 429, an error frame) and counted. Counts are per intake
process: with N replicas a sender may get up to N times the limit through.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from contracts.incidents import ContactDetails
from services.intake.domain import normalise_email, normalise_handle


def sender_of(channel: str, contact: ContactDetails) -> str:
    """Who is sending, as the guard counts them: the most specific key the contact has."""
    key = (
        (contact.user_id or "").strip()
        or normalise_email(contact.email)
        or "".join(c for c in (contact.phone or "") if c.isdigit())
        or normalise_handle(contact.social_handle)
        or "anonymous"
    )
    return f"{channel}:{key}"


class FloodGuard:
    """At most ``max_contacts`` per sender in any ``window_s`` seconds (0 turns the guard off)."""

    def __init__(self, window_s: float, max_contacts: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._max = max_contacts
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def admit(self, sender: str) -> bool:
        """Count one contact of ``sender``; False (and not counted) when the sender is over the limit."""
        if self._max <= 0:
            return True
        now = self._clock()
        times = self._seen.setdefault(sender, deque())
        while times and times[0] <= now - self._window_s:
            times.popleft()
        if len(times) >= self._max:
            return False
        times.append(now)
        if len(self._seen) > 100_000:
            self._forget_quiet_senders(now)
        return True

    def _forget_quiet_senders(self, now: float) -> None:
        self._seen = {s: t for s, t in self._seen.items() if t and t[-1] > now - self._window_s}
