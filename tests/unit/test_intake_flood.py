"""The flood guard counts per sender within a sliding window."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.incidents import ContactDetails, IncidentReportedData
from services.intake.flood import FloodGuard, TopicFloodGuard, sender_of, straight_onto_topic
from services.intake.reporting import reported_message
from tests.support.kafka import incident


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


def test_on_the_topic_a_redelivered_message_is_admitted_again_without_counting_twice() -> None:
    clock = Clock()
    topic = TopicFloodGuard(FloodGuard(window_s=60, max_contacts=2, clock=clock), clock=clock)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert topic.admit(first, "integration:u-1")
    for _ in range(5):  # a retried batch, a rebalance: the same message again
        assert topic.admit(first, "integration:u-1")
    assert topic.admit(second, "integration:u-1")  # the second contact still fits: the first counted once
    assert not topic.admit(third, "integration:u-1")
    assert topic.admit(second, "integration:u-1")  # admitted once, admitted on every redelivery


def test_a_flooded_message_delivered_again_after_the_burst_is_admitted_and_counted_once() -> None:
    clock = Clock()
    topic = TopicFloodGuard(FloodGuard(window_s=60, max_contacts=1, clock=clock), clock=clock)
    assert topic.admit(uuid.uuid4(), "integration:u-1")
    flooded = uuid.uuid4()
    assert not topic.admit(flooded, "integration:u-1")
    assert not topic.admit(flooded, "integration:u-1")  # still in the burst: set aside again
    clock.now += 61  # an operator replays it from the dead-letter topic once the burst is over
    assert topic.admit(flooded, "integration:u-1")
    assert not topic.admit(uuid.uuid4(), "integration:u-1")  # ... and it counted


def test_only_reports_an_integration_published_itself_are_guarded_on_the_topic() -> None:
    published_by_an_integration = incident("Printer on fire", email="a@example.com")
    assert straight_onto_topic(published_by_an_integration)
    data = IncidentReportedData(
        channel="sms", channel_message_id="SM123", received_at=datetime.now(UTC), subject="Hello"
    )
    assert not straight_onto_topic(reported_message(data))  # intake's SMS adapter counted it already
