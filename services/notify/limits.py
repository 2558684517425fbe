"""Rate limits: token buckets per recipient and per method, so a runaway loop upstream
cannot send 10,000 SMS (pure: the caller passes the clock).

A notification over a limit is **held back**: recorded in the store with that
outcome and counted in ``helpdesk_notify_held_back_total``, never sent later.
Delaying it instead would stall the partition behind it (and everything queued
for other people) for as long as the loop runs; a held-back notification is
visible and can be replayed by hand. The buckets live in each replica's memory:
with N replicas the effective limits are N times the configured ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PHONE_METHODS = frozenset({"sms", "phone"})
# Machines, not people: an integration's webhook and a flag on the ticket have no per-recipient limit.
UNLIMITED_PER_RECIPIENT = frozenset({"webhook", "flag"})


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: int
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:  # first use: a full bucket
            self.tokens, self.at = float(self.burst), now
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate_per_s)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class _Unlimited(TokenBucket):
    def take(self, now: float) -> bool:
        return True


_ALWAYS = _Unlimited(0.0, 0)


@dataclass(frozen=True)
class LimitSettings:
    per_recipient_per_s: float
    per_recipient_burst: int
    overall_per_s: float
    overall_burst: int
    phone_per_s: float
    phone_burst: int


@dataclass
class RateLimits:
    settings: LimitSettings
    _recipients: dict[tuple[str, str], TokenBucket] = field(default_factory=dict)
    _methods: dict[str, TokenBucket] = field(default_factory=dict)

    def hold_back(self, method: str, to: str, now: float) -> str | None:
        """None when the notification may go; else which limit holds it back ('recipient' or 'overall')."""
        s = self.settings
        recipient = self._recipients.get((method, to)) if method not in UNLIMITED_PER_RECIPIENT else _ALWAYS
        if recipient is None:
            recipient = self._recipients[(method, to)] = TokenBucket(s.per_recipient_per_s, s.per_recipient_burst)
            self._forget_idle(now)
        overall = self._methods.get(method)
        if overall is None:
            rate, burst = (s.phone_per_s, s.phone_burst) if method in PHONE_METHODS else (s.overall_per_s, s.overall_burst)
            overall = self._methods[method] = TokenBucket(rate, burst)
        if not recipient.take(now):
            return "recipient"
        if not overall.take(now):
            recipient.tokens += 1.0  # not sent: the recipient's token is given back
            return "overall"
        return None

    def _forget_idle(self, now: float) -> None:
        # Buckets that have refilled are the same as new ones: drop them so memory stays bounded.
        if len(self._recipients) < 10_000:
            return
        full = [k for k, b in self._recipients.items() if b.tokens + (now - b.at) * b.rate_per_s >= b.burst]
        for key in full:
            del self._recipients[key]
