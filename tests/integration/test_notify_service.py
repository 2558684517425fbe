"""Notify over the real broker, both databases and a real SMTP server: the
customer hears of the resolution once, redelivery sends nothing more, and a
request that cannot be sent goes to the dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from prometheus_client import REGISTRY

from contracts.commands import FlagTicket
from contracts.envelope import Envelope, new_envelope
from contracts.incidents import Channel, CustomerProfile
from contracts.notifications import (
    NotificationRequested,
    NotificationRequestedData,
    Recipient,
)
from contracts.registry import parse_message
from contracts.tickets import (
    TicketOpened,
    TicketOpenedData,
    TicketResolved,
    TicketResolvedData,
)
from contracts.topics import (
    DEAD_LETTERS,
    NOTIFICATION_REQUESTS,
    NOTIFY_COMMANDS,
    TICKET_EVENTS_TOPIC,
    Topic,
)
from runtime.settings import CommonSettings
from services.notify.bootstrap import build
from services.notify.config import Settings
from tests.support.kafka import read_all
from tests.support.provider_sink import ProviderSink
from tests.support.smtp_sink import SmtpSink, free_port


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@asynccontextmanager
async def notify(
    kafka_bootstrap: str, topic_prefix: str, database_url: str, smtp_port: int,
    settings_overrides: dict[str, Any] | None = None, **common: Any,
) -> AsyncIterator[None]:
    """The service in-process, sending to ``smtp_port`` on 127.0.0.1."""
    # These tests count the resolution and escalation mails; acknowledgements have their own tests.
    overrides = {"acknowledge_openings": False, **(settings_overrides or {})}
    settings = Settings(database_url=database_url, smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_timeout_s=5,
                        **overrides)
    common_settings = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_retry_backoff_ms=10, **common
    )
    service = build(common_settings, settings)
    async with service._lifespan(service.app):
        yield


@asynccontextmanager
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def publish(p: AIOKafkaProducer, prefix: str, topic: Topic, *messages: Envelope[Any]) -> None:
    for message in messages:
        value, key = message.model_dump_json().encode(), str(message.ticket_id).encode()
        await p.send_and_wait(topic.qualified(prefix), value, key=key)


async def dead_letters(kafka_bootstrap: str, prefix: str, count: int = 1, timeout: float = 20) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(DEAD_LETTERS.qualified(prefix), bootstrap_servers=kafka_bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        found: list[ConsumerRecord] = []
        end = time.monotonic() + timeout
        while len(found) < count:
            assert time.monotonic() < end, f"expected {count} dead letter(s) within {timeout}s, got {len(found)}"
            batches = await consumer.getmany(timeout_ms=200)
            found.extend(r for records in batches.values() for r in records)
        return found
    finally:
        await consumer.stop()


def opened(ticket_id: uuid.UUID, number: str, email: str | None) -> Envelope[Any]:
    data = TicketOpenedData(
        number=number,
        version=1,
        channel=Channel.EMAIL,
        channel_message_id=f"m-{number}",
        reported_at=datetime.now(UTC),
        subject="Printer on fire",
        description="smoke",
        customer=CustomerProfile(identified=False, email=email, name="Ada"),
    )
    return new_envelope(TicketOpened, data, ticket_id=ticket_id)


def resolved(ticket_id: uuid.UUID, number: str, resolution: str, version: int = 5) -> Envelope[Any]:
    data = TicketResolvedData(number=number, version=version, resolution=resolution, resolved_by="agent-7")
    return new_envelope(TicketResolved, data, ticket_id=ticket_id)


def request(
    ticket_id: uuid.UUID, method: str, email: str | None = "l2-oncall@helpdesk.example", phone: str | None = None
) -> Envelope[Any]:
    data = NotificationRequestedData(
        number="HD-3", recipient=Recipient(kind="level", id="L2", email=email, phone=phone),
        method=method,  # type: ignore[arg-type]
        template="ticket_escalated", subject="[HD-3] escalated to L2",
        context={"level": "2", "level_name": "L2", "queue": "L2-specialists"},
    )
    return new_envelope(NotificationRequested, data, ticket_id=ticket_id)


def skipped(reason: str) -> float:
    return REGISTRY.get_sample_value("helpdesk_notify_skipped_total", {"reason": reason}) or 0.0


async def test_the_customer_gets_one_resolution_email_even_when_the_resolution_is_redelivered(
    kafka_bootstrap: str, topic_prefix: str, database_url: str, sink: SmtpSink
) -> None:
    ticket = uuid.uuid4()
    first = resolved(ticket, "HD-12", "Replaced the fuser unit.")
    async with notify(kafka_bootstrap, topic_prefix, database_url, sink.port), producer(kafka_bootstrap) as p:
        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, opened(ticket, "HD-12", "ada@example.com"), first)
        [mail] = await sink.wait_for(1)
        assert mail.rcpt_tos == ("ada@example.com",)
        assert mail.message["From"] == "helpdesk@helpdesk.example"
        assert mail.message["Subject"] == "[HD-12] Resolved: Printer on fire"
        assert mail.message["Message-ID"] == f"<resolved.{first.event_id}.HD-12@helpdesk>"
        assert "Your incident HD-12 is resolved." in mail.text and "Replaced the fuser unit." in mail.text
        assert "Replaced the fuser unit." in mail.html

        # The same resolution again, then a later one of the same ticket (same partition, so read after it).
        later = resolved(ticket, "HD-12", "Replaced the whole printer.", version=8)
        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, first, later)
        mails = await sink.wait_for(2)
        await asyncio.sleep(0.3)
        assert [m.message["Message-ID"] for m in sink.messages] == [
            f"<resolved.{first.event_id}.HD-12@helpdesk>", f"<resolved.{later.event_id}.HD-12@helpdesk>"]
        assert "Replaced the whole printer." in mails[1].text


async def test_a_resolution_without_a_known_customer_email_is_skipped_and_counted(
    kafka_bootstrap: str, topic_prefix: str, sqlite_database: str, sink: SmtpSink
) -> None:
    ticket, before = uuid.uuid4(), skipped("no_customer_email")
    async with notify(kafka_bootstrap, topic_prefix, sqlite_database, sink.port), producer(kafka_bootstrap) as p:
        no_address = opened(ticket, "HD-4", None)
        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, no_address, resolved(ticket, "HD-4", "Fixed."))
        end = time.monotonic() + 20
        while skipped("no_customer_email") == before:
            assert time.monotonic() < end, "the resolution was never considered"
            await asyncio.sleep(0.05)
    assert sink.messages == []


async def test_an_email_request_is_sent_once_to_its_recipient(
    kafka_bootstrap: str, topic_prefix: str, database_url: str, sink: SmtpSink
) -> None:
    ticket = uuid.uuid4()
    asked = request(ticket, "email")
    async with notify(kafka_bootstrap, topic_prefix, database_url, sink.port), producer(kafka_bootstrap) as p:
        await publish(p, topic_prefix, NOTIFICATION_REQUESTS, asked, asked)  # sent twice, as after a crash
        [mail] = await sink.wait_for(1)
        assert mail.rcpt_tos == ("l2-oncall@helpdesk.example",)
        assert mail.message["Subject"] == "[HD-3] escalated to L2"
        assert mail.message["Message-ID"] == f"<request.{asked.event_id}.HD-3@helpdesk>"
        assert "Ticket HD-3 has been escalated to L2 (queue L2-specialists)." in mail.text

        marker = request(ticket, "email", email="l3-oncall@helpdesk.example")  # same partition, read after both
        await publish(p, topic_prefix, NOTIFICATION_REQUESTS, marker)
        await sink.wait_for(2)
        await asyncio.sleep(0.3)
        assert [m.rcpt_tos for m in sink.messages] == [("l2-oncall@helpdesk.example",), ("l3-oncall@helpdesk.example",)]


async def test_an_sms_request_without_a_phone_number_goes_to_the_dead_letter_topic_saying_so(
    kafka_bootstrap: str, topic_prefix: str, sqlite_database: str, sink: SmtpSink
) -> None:
    sms = request(uuid.uuid4(), "sms", email=None)
    async with notify(kafka_bootstrap, topic_prefix, sqlite_database, sink.port), producer(kafka_bootstrap) as p:
        await publish(p, topic_prefix, NOTIFICATION_REQUESTS, sms)
        [letter] = await dead_letters(kafka_bootstrap, topic_prefix)
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["dlt.reason"] == "rejected by handler: an sms notification to level L2 has no phone number"
    assert headers["dlt.origin.topic"] == NOTIFICATION_REQUESTS.qualified(topic_prefix)
    assert letter.value == sms.model_dump_json().encode()
    assert sink.messages == []


async def test_an_unreachable_smtp_server_is_retried_then_dead_lettered_and_nothing_is_recorded_as_sent(
    kafka_bootstrap: str, topic_prefix: str, sqlite_database: str, sink: SmtpSink
) -> None:
    asked = request(uuid.uuid4(), "email")
    nobody_listening = free_port()
    async with (
        notify(kafka_bootstrap, topic_prefix, sqlite_database, nobody_listening, kafka_max_attempts=2),
        producer(kafka_bootstrap) as p,
    ):
        await publish(p, topic_prefix, NOTIFICATION_REQUESTS, asked)
        [letter] = await dead_letters(kafka_bootstrap, topic_prefix)
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["dlt.attempts"] == "2" and "SMTPConnect" in headers["dlt.reason"]

    # Replayed from the dead-letter topic once SMTP is back, it is sent: it was never marked sent.
    async with notify(kafka_bootstrap, topic_prefix, sqlite_database, sink.port), producer(kafka_bootstrap) as p:
        await publish(p, topic_prefix, NOTIFICATION_REQUESTS, asked)
        [mail] = await sink.wait_for(1)
    assert mail.message["Message-ID"] == f"<request.{asked.event_id}.HD-3@helpdesk>"


async def test_a_flag_request_raises_one_flag_command_for_the_ticket_service_however_often_it_is_redelivered(
    kafka_bootstrap: str, topic_prefix: str, sqlite_database: str, sink: SmtpSink
) -> None:
    ticket = uuid.uuid4()
    flag = request(ticket, "flag", email=None)
    async with notify(kafka_bootstrap, topic_prefix, sqlite_database, sink.port), producer(kafka_bootstrap) as p:
        await publish(p, topic_prefix, NOTIFICATION_REQUESTS, flag, flag)
        [record] = await read_all(kafka_bootstrap, NOTIFY_COMMANDS.qualified(topic_prefix))
    command = parse_message(record.value, (FlagTicket,))
    assert record.key == str(ticket).encode() and command.ticket_id == ticket
    assert command.event_id == uuid.uuid5(uuid.NAMESPACE_URL, f"helpdesk:notify:flag:request.{flag.event_id}")
    assert command.data.raised_by == "notify" and command.data.flag == "escalated"
    assert command.causation_id == str(flag.event_id)


async def test_an_sms_provider_answering_500_is_retried_then_the_request_is_dead_lettered_and_replays_later(
    kafka_bootstrap: str, topic_prefix: str, sqlite_database: str, sink: SmtpSink
) -> None:
    sms = request(uuid.uuid4(), "sms", email=None, phone="+441610000002")
    with ProviderSink() as provider:
        provider.fail(500, times=1000)
        twilio = {"twilio_base_url": provider.url, "twilio_account_sid": "AC1", "webhook_attempts": 2}
        async with (
            notify(kafka_bootstrap, topic_prefix, sqlite_database, sink.port, twilio, kafka_max_attempts=2),
            producer(kafka_bootstrap) as p,
        ):
            await publish(p, topic_prefix, NOTIFICATION_REQUESTS, sms)
            [letter] = await dead_letters(kafka_bootstrap, topic_prefix)
        headers = {k: v.decode() for k, v in letter.headers}
        assert headers["dlt.attempts"] == "2" and "ProviderUnavailable" in headers["dlt.reason"]
        assert "HTTP 500" in headers["dlt.reason"]
        assert len(provider.requests) == 4  # 2 consumer attempts x 2 tries in the call

        provider.recover()
        async with notify(kafka_bootstrap, topic_prefix, sqlite_database, sink.port, twilio), producer(kafka_bootstrap) as p:
            await publish(p, topic_prefix, NOTIFICATION_REQUESTS, sms)  # replayed from the dead-letter topic
            [sent] = await provider.wait_for(1)
    assert sent.form["To"] == "+441610000002" and sent.form["Body"] == "[HD-3] escalated to L2 (L2-specialists)"
