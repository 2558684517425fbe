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


def test_contacts_without_a_sender_identity_share_no_bucket_and_are_not_counted() -> None:
    assert sender_of("phone", ContactDetails()) is None  # a withheld number
    assert sender_of("social", ContactDetails(name="@someone")) is None  # a mention Meta sent with ids only
    guard = FloodGuard(window_s=60, max_contacts=3)
    assert all(guard.admit(sender_of("phone", ContactDetails())) for _ in range(100))
    assert guard.admit("phone:447700900123") and guard.senders == 1


def test_anonymous_incidents_on_the_topic_are_not_counted_against_each_other() -> None:
    topic = TopicFloodGuard(FloodGuard(window_s=60, max_contacts=2))
    assert all(topic.admit(uuid.uuid4(), sender_of("telephone", ContactDetails())) for _ in range(50))
    assert topic.admit(uuid.uuid4(), "telephone:u-1")  # and a known caller still has the whole limit


def test_two_hundred_thousand_senders_in_one_window_stay_within_the_memory_cap_each_forgotten_once() -> None:
    clock = Clock()
    guard = FloodGuard(window_s=60, max_contacts=3, clock=clock, max_senders=50_000)
    admitted = 0
    for n in range(200_000):  # a bulk import: every sender new, none quiet yet
        admitted += guard.admit(f"integration:u-{n}")
        clock.now += 0.0001
    assert admitted == 200_000  # room is made by forgetting, never by refusing
    assert guard.senders == 50_000
    assert guard.forgotten == 150_000  # each sender dropped once: no rescans of the whole table


def test_senders_quiet_for_a_window_are_forgotten_as_time_goes_on() -> None:
    clock = Clock()
    guard = FloodGuard(window_s=60, max_contacts=3, clock=clock)
    for n in range(200_000):  # 1000 new senders a second for 200 s
        assert guard.admit(f"sms:{n}")
        clock.now += 0.001
    assert guard.senders <= 60_001  # only the last window's senders are remembered
    assert guard.forgotten == 200_000 - guard.senders


def test_forgetting_to_make_room_drops_the_least_recently_admitted_sender() -> None:
    clock = Clock()
    guard = FloodGuard(window_s=60, max_contacts=1, clock=clock, max_senders=2)
    assert guard.admit("email:a@example.com")
    assert guard.admit("email:b@example.com")
    assert not guard.admit("email:a@example.com")  # still counted: refused
    assert guard.admit("email:c@example.com")  # room for c: a, admitted longest ago, is forgotten
    assert guard.admit("email:a@example.com")
    assert not guard.admit("email:c@example.com")


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


def test_an_unverified_contact_is_counted_by_the_address_it_came_from_not_by_whom_it_names() -> None:
    victim = ContactDetails(email="victim@example.com")
    forged = sender_of("email", victim, verified=False, peer="203.0.113.7")
    real = sender_of("email", victim, verified=True, peer="198.51.100.1")
    assert forged != real and "203.0.113.7" in (forged or "")
    assert real == "email:victim@example.com"
    guard = FloodGuard(window_s=60, max_contacts=2)
    assert [guard.admit(forged) for _ in range(3)] == [True, True, False]
    assert guard.admit(real)  # the forger's burst holds back only the forger
