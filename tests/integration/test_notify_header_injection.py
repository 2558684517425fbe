"""A subject or address that holds a line break can never add a header or a body to notify's mail.

The chat attack: a customer opens a chat whose subject is
``x\\r\\nReply-To: attacker@evil.test\\r\\n\\r\\nbody``. Intake will fold it, but notify must
hold on its own: here the unfolded messages are published straight onto the topics, and what a
real SMTP server receives is checked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.envelope import Envelope, new_envelope
from contracts.incidents import Channel, CustomerProfile
from contracts.notifications import NotificationRequested, NotificationRequestedData, Recipient
from contracts.tickets import TicketOpened, TicketOpenedData
from contracts.topics import NOTIFICATION_REQUESTS, TICKET_EVENTS_TOPIC
from tests.integration.test_notify_service import dead_letters, notify, producer, publish
from tests.support.smtp_sink import SmtpSink

ATTACK = "x\r\nReply-To: attacker@evil.test\r\n\r\nbody"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def chat_opened(subject: str) -> Envelope[Any]:
    data = TicketOpenedData(
        number="HD-9", version=1, channel=Channel.CHAT, channel_message_id=f"chat-{uuid.uuid4().hex}",
        reported_at=datetime.now(UTC), subject=subject, description="",
        customer=CustomerProfile(identified=False, email="ada@example.com", name="Ada"),
    )
    return new_envelope(TicketOpened, data, ticket_id=uuid.uuid4())


def requested(subject: str, email: str) -> Envelope[Any]:
    data = NotificationRequestedData(
        number="HD-9", recipient=Recipient(kind="level", id="L2", email=email), method="email",
        template="ticket_escalated", subject=subject,
        context={"level": "2", "level_name": "L2", "queue": "L2-specialists"},
    )
    return new_envelope(NotificationRequested, data, ticket_id=uuid.uuid4())


async def test_the_chat_attack_sends_the_desks_acknowledgement_with_no_reply_to_and_the_desks_body(
    kafka_bootstrap: str, topic_prefix: str, sqlite_database: str, sink: SmtpSink
) -> None:
    async with notify(kafka_bootstrap, topic_prefix, sqlite_database, sink.port,
                      settings_overrides={"acknowledge_openings": True}), producer(kafka_bootstrap) as p:
        await publish(p, topic_prefix, TICKET_EVENTS_TOPIC, chat_opened(ATTACK))
        [mail] = await sink.wait_for(1)

    assert mail.rcpt_tos == ("ada@example.com",)
    assert mail.message["Reply-To"] is None
    assert mail.message["Subject"] == "[HD-9] Received: x Reply-To: attacker@evil.test body"
    assert mail.text.startswith("Dear Ada,\n\nWe have received your request and opened ticket HD-9")
    assert mail.message.get_body(preferencelist=("html",)) is not None  # the desk's two parts, nothing of theirs


async def test_a_requested_mail_is_folded_and_one_to_an_address_with_a_line_break_is_dead_lettered_unsent(
    kafka_bootstrap: str, topic_prefix: str, sqlite_database: str, sink: SmtpSink
) -> None:
    smuggled = requested("[HD-9] escalated", "l2@helpdesk.example\r\nBcc: attacker@evil.test")
    async with notify(kafka_bootstrap, topic_prefix, sqlite_database, sink.port), producer(kafka_bootstrap) as p:
        await publish(p, topic_prefix, NOTIFICATION_REQUESTS, smuggled)
        await publish(p, topic_prefix, NOTIFICATION_REQUESTS, requested(f"[HD-9] {ATTACK}", "l2@helpdesk.example"))
        [mail] = await sink.wait_for(1)  # the partition kept flowing past the refused one
        [letter] = await dead_letters(kafka_bootstrap, topic_prefix)

    assert (mail.rcpt_tos, mail.message["Reply-To"]) == (("l2@helpdesk.example",), None)
    assert mail.message["Subject"] == "[HD-9] x Reply-To: attacker@evil.test body"
    assert mail.text.startswith("Ticket HD-9 has been escalated to L2 (queue L2-specialists).")  # the desk's body
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["dlt.reason"].startswith("rejected by handler: refused: the To header value")
    assert headers["dlt.attempts"] == "1"  # refused at once, not retried
    assert NotificationRequested.model_validate_json(letter.value).event_id == smuggled.event_id
    assert all("attacker@evil.test" not in m.rcpt_tos for m in sink.messages)
