"""The flood guard: no more than so many contacts per sender in a window (pure).

A mail loop (an auto-responder answering our acknowledgement), a stuck
integration or a spam burst would otherwise open thousands of tickets. Each
channel adapter asks before it publishes; a sender over the limit is refused
(SMTP 550, HTTP 429, an error frame) and counted. Counts are per intake
process: with N replicas a sender may get up to N times the limit through.

Incidents an integration publishes straight onto the reported topic are
guarded too (:class:`TopicFloodGuard`), but cannot be refused: they are
already acknowledged. The consumer sets a flooded one aside on the
dead-letter topic instead, whole, from where an operator can replay it.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable

from contracts.incidents import ContactDetails, IncidentReported
from services.intake.domain import normalise_email, normalise_handle, reported_event_id


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

    @property
    def window_s(self) -> float:
        return self._window_s

    @property
    def max_contacts(self) -> int:
        return self._max

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


def straight_onto_topic(reported: IncidentReported) -> bool:
    """Whether an integration published this report itself (intake's own carry the id intake derives).

    Intake's channel adapters have already counted theirs; counting them again
    on the topic would halve every sender's limit.
    """
    data = reported.data
    return reported.event_id != reported_event_id(data.channel.value, data.channel_message_id)


class TopicFloodGuard:
    """The flood guard for the topic path, where the same message may be delivered again.

    A message is counted once, by its event id: a redelivery of an admitted
    message (a retried batch, a rebalance, a restart before the commit) is
    admitted again without counting. A flooded message was never counted,
    so deciding it again (when it is redelivered, or replayed from the
    dead-letter topic once the burst is over) counts it at most once too.
    """

    MEMORY = 100_000  # admitted event ids remembered, at most

    def __init__(self, guard: FloodGuard, clock: Callable[[], float] = time.monotonic) -> None:
        self._guard = guard
        self._clock = clock
        self._admitted: OrderedDict[uuid.UUID, float] = OrderedDict()
        # Longer than the window: a redelivery after the window must not count in the next one either.
        self._remember_s = max(guard.window_s * 10, 3600.0)

    @property
    def limit(self) -> str:
        """The limit, as a dead letter's reason states it."""
        return f"{self._guard.max_contacts} incidents per {self._guard.window_s:g} s"

    def admit(self, event_id: uuid.UUID, sender: str) -> bool:
        if event_id in self._admitted:
            return True
        if not self._guard.admit(sender):
            return False
        now = self._clock()
        self._admitted[event_id] = now
        while self._admitted and (
            len(self._admitted) > self.MEMORY or next(iter(self._admitted.values())) <= now - self._remember_s
        ):
            self._admitted.popitem(last=False)
        return True
