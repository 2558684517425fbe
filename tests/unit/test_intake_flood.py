"""The flood guard counts per sender within a sliding window."""

from __future__ import annotations

from contracts.incidents import ContactDetails
from services.intake.flood import FloodGuard, sender_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_sender_over_the_limit_is_refused_until_the_window_has_passed() -> None:
    clock = Clock()
    guard = FloodGuard(window_s=60, max_contacts=3, clock=clock)
    assert [guard.admit("email:a@example.com") for _ in range(4)] == [True, True, True, False]
    assert guard.admit("email:b@example.com")  # another sender is not held back
    clock.now += 59.9
    assert not guard.admit("email:a@example.com")
    clock.now += 0.2
    assert guard.admit("email:a@example.com")


def test_a_limit_of_zero_turns_the_guard_off() -> None:
    guard = FloodGuard(window_s=60, max_contacts=0)
    assert all(guard.admit("sms:+447700900123") for _ in range(1000))


def test_one_sender_is_one_sender_however_the_address_is_written() -> None:
    assert sender_of("email", ContactDetails(email=" Ada@Example.com")) == sender_of(
        "email", ContactDetails(email="ada@example.com")
    )
    assert sender_of("sms", ContactDetails(phone="+44 7700 900123")) == sender_of(
        "sms", ContactDetails(phone="+447700900123")
    )
    assert sender_of("web", ContactDetails()) == "web:anonymous"
