"""The flood guard: no more than so many contacts per sender in a window (pure).

A mail loop (an auto-responder answering our acknowledgement), a stuck
integration or a spam burst would otherwise open thousands of tickets. Each
channel adapter asks before it publishes; a sender over the limit is refused
for now (SMTP 451, HTTP 429, an error frame: the peer keeps the contact and
tries again later, so nobody is locked out for good) and counted. Only what
the sender cannot forge is counted against them: a verified identity, or for
an unverified contact the address it connected from (``sender_of``). Counts are per intake
process: with N replicas a sender may get up to N times the limit through.

Meta's webhook cannot be refused (Meta does not resend a delivery answered
200, and an error makes it resend all of it): a flooded Meta contact is set
aside whole on the dead-letter topic instead (``reporting.py``).

A contact with no sender identity (a withheld number, an Instagram mention
Meta sends with ids only, an anonymous chat) is not counted: there is no
sender to hold back, and one bucket for all of them would let one burst
refuse every other anonymous customer. A flood that varies its identity
passes a per-sender guard anyway; the guard is against loops and stuck
senders, which have one.

Incidents an integration publishes straight onto the reported topic are
guarded only when ``INTAKE_FLOOD_TOPIC_MAX_PER_SENDER`` is set
(:class:`TopicFloodGuard`); they are already acknowledged, so the consumer
sets a flooded one aside on the dead-letter topic, whole, for replay.
"""

from __future__ import annotations

import time
import uuid
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable

from contracts.incidents import ContactDetails, IncidentReported
from services.intake.domain import normalise_email, normalise_handle, reported_event_id


def sender_of(channel: str, contact: ContactDetails, *, verified: bool = True, peer: str | None = None) -> str | None:
    """Who is sending, as the guard counts them (None: nobody known).

    A verified contact is counted by the most specific key it has. An unverified one (a forged From:,
    a chat claiming someone's address) is counted by what the sender cannot forge: the address it
    connected from, with its claim, so a flood in someone's name from elsewhere never holds back
    that person's own, verified contacts (nor other customers behind the same relay).
    """
    key = (
        (contact.user_id or "").strip()
        or normalise_email(contact.email)
        or "".join(c for c in (contact.phone or "") if c.isdigit())
        or normalise_handle(contact.social_handle)
    )
    if not verified and peer:
        return f"{channel}:unverified:{peer}:{key}"
    return f"{channel}:{key}" if key else None


class FloodGuard:
    """At most ``max_contacts`` per sender in any ``window_s`` seconds (0 turns the guard off).

    Memory is bounded and each admit costs O(1) amortised, however many senders
    a window has: senders are kept in the order they were last admitted, so
    the ones quiet for a whole window are at the front and are forgotten from
    there, each once. Past ``max_senders`` the least recently admitted sender
    is forgotten early: it may get more through, nobody is refused for lack of
    room.
    """

    MAX_SENDERS = 100_000

    def __init__(
        self,
        window_s: float,
        max_contacts: int,
        clock: Callable[[], float] = time.monotonic,
        max_senders: int = MAX_SENDERS,
    ) -> None:
        self._window_s = window_s
        self._max = max_contacts
        self._clock = clock
        self._max_senders = max_senders
        # sender -> times of its admitted contacts in the window, oldest first; least recently admitted first
        self._seen: OrderedDict[str, list[float]] = OrderedDict()
        self.forgotten = 0  # senders dropped from memory (quiet, or to make room): each once

    @property
    def window_s(self) -> float:
        return self._window_s

    @property
    def max_contacts(self) -> int:
        return self._max

    @property
    def limit(self) -> str:
        """The limit, as a refusal or a dead letter's reason states it."""
        return f"{self._max} per {self._window_s:g} s"

    @property
    def senders(self) -> int:
        """Senders remembered now."""
        return len(self._seen)

    def admit(self, sender: str | None) -> bool:
        """Count one contact of ``sender``; False (and not counted) when the sender is over the limit.

        ``None`` (no sender identity) is admitted and not counted.
        """
        if self._max <= 0 or sender is None:
            return True
        now = self._clock()
        self._forget_quiet_senders(now)
        times = self._seen.get(sender)
        if times is None:
            self._seen[sender] = [now]
            self._make_room()
            return True
        del times[: bisect_right(times, now - self._window_s)]
        if len(times) >= self._max:
            return False
        times.append(now)
        self._seen.move_to_end(sender)
        return True

    def _forget_quiet_senders(self, now: float) -> None:
        while self._seen:
            sender, times = next(iter(self._seen.items()))
            if times[-1] > now - self._window_s:
                return  # the front is the least recently admitted: everyone after it is active too
            del self._seen[sender]
            self.forgotten += 1

    def _make_room(self) -> None:
        while len(self._seen) > self._max_senders:
            self._seen.popitem(last=False)
            self.forgotten += 1


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
        return self._guard.limit

    def admit(self, event_id: uuid.UUID, sender: str | None) -> bool:
        if sender is None or event_id in self._admitted:
            return True  # nobody to count it against, or counted already
        if not self._guard.admit(sender):
            return False
        now = self._clock()
        self._admitted[event_id] = now
        while self._admitted and (
            len(self._admitted) > self.MEMORY or next(iter(self._admitted.values())) <= now - self._remember_s
        ):
            self._admitted.popitem(last=False)
        return True
