"""The e-mail channel against real peers: mail sent with aiosmtplib comes out as identified incidents.

One intake service (SMTP receiver on a free port) runs for the module on its
own topics; each test sends its own mails and looks only for its own records.
Mail comes "from the relay" (127.0.0.1) with the relay's Authentication-Results
saying DMARC passed, unless a test forges it from elsewhere (127.0.0.2).
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from aiokafka import ConsumerRecord

from contracts.envelope import new_envelope
from contracts.incidents import IncidentIdentified
from contracts.tickets import TicketResolved, TicketResolvedData
from contracts.topics import INCIDENTS_IDENTIFIED, TICKET_EVENTS_TOPIC
from runtime.settings import CommonSettings
from runtime.topics_admin import ensure_topics
from services.intake.bootstrap import build
from services.intake.config import Settings
from services.intake.domain import reported_event_id
from tests.support.kafka import produce, read_all, wait_for

ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 64 * 1024
FLOOD_MAX = 8
MAX_SESSIONS = 4
RELAY = "mx.helpdesk.example"  # the authserv-id of the receiving relay intake trusts
PASSED = f"{RELAY}; spf=pass smtp.mailfrom=example.com; dmarc=pass (p=reject) header.from=example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MailIntake:
    def __init__(self, bootstrap: str, prefix: str, port: int) -> None:
        self.bootstrap = bootstrap
        self.port = port
        self.identified = prefix + INCIDENTS_IDENTIFIED.name
        self.ticket_events = prefix + TICKET_EVENTS_TOPIC.name

    async def send(self, message: EmailMessage, sender: str | None = None, source: str = "127.0.0.1") -> tuple[int, str]:
        """Send ``message`` from the address ``source``; the receiver's answer to DATA (code, text)."""
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port, timeout=15, source_address=(source, 0))
        await smtp.connect()
        try:
            await smtp.mail("relay@example.net" if sender is None else sender)
            await smtp.rcpt("helpdesk@example.com")
            response = await smtp.data(message.as_bytes())
            return response.code, response.message
        except aiosmtplib.SMTPResponseException as exc:
            return exc.code, exc.message
        finally:
            await smtp.quit()

    async def identified_for(self, channel_message_id: str, count: int = 1) -> list[IncidentIdentified]:
        async def ours() -> list[ConsumerRecord]:
            records = await read_all(self.bootstrap, self.identified, at_least=1, timeout=5)
            found = [r for r in records if json.loads(r.value)["data"]["channel_message_id"] == channel_message_id]
            return found if len(found) >= count else []

        return [IncidentIdentified.model_validate_json(r.value) for r in await wait_for(ours, timeout=30)]


@pytest.fixture(scope="module")
async def intake(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MailIntake]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix, partitions=3)
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=prefix, kafka_retry_backoff_ms=10
    )
    port = free_port()
    settings = Settings(
        directory_file=ROOT / "services/intake/directory.example.yaml",
        database_url=f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('intake') / 'intake.db'}",
        smtp_port=port,
        smtp_max_message_bytes=MAX_BYTES,
        smtp_max_sessions=MAX_SESSIONS,
        flood_max_per_sender=FLOOD_MAX,
        mail_trusted_authserv_ids=f"{RELAY}, mx2.helpdesk.example",
    )
    service = build(common, settings)
    async with service._lifespan(service.app):
        intake = MailIntake(kafka_bootstrap, prefix, port)
        await wait_for(lambda: _listening(port), timeout=10)
        yield intake


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def message(
    subject: str, body: str = "It broke.", sender: str = "Grace <GRACE.HOPPER@example.com>", results: str | None = PASSED
) -> EmailMessage:
    """A mail as the relay hands it on: with its Authentication-Results on top (``results``; None: none)."""
    m = EmailMessage()
    if results is not None:
        m["Authentication-Results"] = results
    m["From"] = sender
    m["To"] = "helpdesk@example.com"
    m["Subject"] = subject
    m["Message-ID"] = f"<{uuid.uuid4().hex}@mail.example.com>"
    m.set_content(body)
    return m


async def test_a_mail_is_answered_250_and_comes_out_identified_with_its_attachments(intake: MailIntake) -> None:
    mail = message("Docker will not start", "Since the update.\n")
    mail.add_attachment(b"x" * 2048, maintype="application", subtype="octet-stream", filename="docker.log")
    code, _ = await intake.send(mail)
    assert code == 250

    [identified] = await intake.identified_for(mail["Message-ID"])
    assert identified.event_id is not None and identified.causation_id == str(
        reported_event_id("email", mail["Message-ID"])
    )
    data = identified.data
    assert (data.channel.value, data.subject, data.description) == (
        "email",
        "Docker will not start",
        "Since the update.",
    )
    assert [(a.filename, a.size_bytes) for a in data.attachments] == [("docker.log", 2048)]
    assert (data.customer.identified_by, data.customer.customer_id) == ("email", "u-1002")
    assert data.customer.department == "Engineering" and data.reply_to_number is None


async def test_a_reply_mail_carries_the_number_of_the_ticket_it_answers(intake: MailIntake) -> None:
    mail = message("Re: [HD-7] Resolved: Docker will not start", "Still broken, sorry.")
    mail["In-Reply-To"] = "<resolved.0d3c0b8e-1111-4b7e-9a57-3d6c9b1e2a10@helpdesk>"
    assert (await intake.send(mail))[0] == 250
    [identified] = await intake.identified_for(mail["Message-ID"])
    assert identified.data.reply_to_number == "HD-7"
    assert identified.data.customer.customer_id == "u-1002"


async def test_the_same_mail_delivered_twice_is_one_incident(intake: MailIntake) -> None:
    mail = message("Outlook asks for my password again and again")
    assert (await intake.send(mail))[0] == 250
    assert (await intake.send(mail))[0] == 250  # the relay did not see our first 250
    identified = await intake.identified_for(mail["Message-ID"], count=2)
    assert len({m.event_id for m in identified}) == 1


async def test_a_mail_from_an_unknown_sender_still_becomes_an_unidentified_incident(intake: MailIntake) -> None:
    mail = message("Printer offline", sender="Visitor <visitor@elsewhere.example>")
    assert (await intake.send(mail))[0] == 250
    [identified] = await intake.identified_for(mail["Message-ID"])
    customer = identified.data.customer
    assert (customer.identified, customer.email, customer.name) == (False, "visitor@elsewhere.example", "Visitor")


async def test_a_mail_without_a_sender_address_is_kept_as_an_unverified_contact_without_one(intake: MailIntake) -> None:
    mail = message("who am I", sender="nobody")
    code, _ = await intake.send(mail, sender="")  # the null sender of a bounce
    assert code == 250
    [identified] = await intake.identified_for(mail["Message-ID"])
    customer = identified.data.customer
    assert (customer.identified, customer.verified, customer.email) == (False, False, None)
    assert "the From: header was 'nobody'" in identified.data.description


async def test_an_oversized_mail_is_refused_with_552(intake: MailIntake) -> None:
    code, _ = await intake.send(message("huge", "x" * (MAX_BYTES + 1000)))
    assert code == 552


async def test_a_reply_to_our_resolution_mail_is_threaded_onto_its_ticket_by_in_reply_to(intake: MailIntake) -> None:
    ticket_id = uuid.uuid4()
    resolved = new_envelope(
        TicketResolved, TicketResolvedData(number="HD-4242", version=5, resolution="Reinstalled", resolved_by="agent-1"),
        ticket_id=ticket_id,
    )  # fmt: skip
    await produce(
        intake.bootstrap, intake.ticket_events, resolved.model_dump_json().encode(), key=str(ticket_id).encode()
    )
    our_mail = f"<resolved.{resolved.event_id}@helpdesk>"

    async def threaded() -> IncidentIdentified | None:
        mail = message("Re: your request", "It is broken again.", sender="tbl@example.com")  # no number in the subject
        mail["In-Reply-To"] = our_mail
        mail["References"] = f"<first@mail.example.com> {our_mail}"
        assert (await intake.send(mail))[0] == 250
        [identified] = await intake.identified_for(mail["Message-ID"])
        return identified if identified.data.reply_to_number else None

    identified = await wait_for(threaded, timeout=30)  # once intake has read the ticket event
    assert identified.data.reply_to_number == "HD-4242"


async def test_a_mail_loop_is_held_back_by_the_flood_guard_with_a_temporary_451(intake: MailIntake) -> None:
    sender = f"Auto Responder <auto-{uuid.uuid4().hex[:8]}@example.com>"
    answers = [await intake.send(message(f"Out of office {n}", sender=sender)) for n in range(FLOOD_MAX + 2)]
    assert [code for code, _ in answers] == [250] * FLOOD_MAX + [451, 451]  # the relay keeps it and tries later
    assert "try again later" in answers[-1][1]
    other = await intake.send(message("A real problem", sender="someone.else@example.com"))
    assert other[0] == 250  # only that sender is held back


async def test_forged_mails_in_a_customers_name_never_hold_back_that_customers_real_mail(intake: MailIntake) -> None:
    # The directory's Tim Berners-Lee; an attacker on another address floods in his name, without the relay's pass.
    forged = [
        await intake.send(message(f"Forged {n}", sender="tbl@example.com", results=None), source="127.0.0.2")
        for n in range(FLOOD_MAX + 1)
    ]
    assert [code for code, _ in forged] == [250] * FLOOD_MAX + [451]  # the forger's own address is held back
    real = message("My laptop will not boot", sender="Tim <tbl@example.com>")
    assert (await intake.send(real))[0] == 250  # from the relay, DMARC passed
    [identified] = await intake.identified_for(real["Message-ID"])
    assert (identified.data.customer.customer_id, identified.data.customer.verified) == ("u-1005", True)


async def test_a_mail_the_relay_did_not_authenticate_is_an_unverified_contact_and_no_reply(intake: MailIntake) -> None:
    # A forged From: naming a customer and her ticket; the relay's own header says DMARC failed, and the
    # sender added one in the relay's name that says it passed (below the relay's, so it does not count).
    mail = message("Re: [HD-12] please send the invoice to my new address", sender="Ada <ada.lovelace@example.com>",
                   results=f"{RELAY}; dmarc=fail (p=none) header.from=example.com")  # fmt: skip
    mail["Authentication-Results"] = f"{RELAY}; dmarc=pass header.from=example.com"  # written by the sender
    mail["In-Reply-To"] = "<opened.1.HD-12@helpdesk>"
    assert (await intake.send(mail))[0] == 250
    [identified] = await intake.identified_for(mail["Message-ID"])
    data = identified.data
    assert data.reply_to_number is None  # a ticket of its own, not a reply on HD-12
    assert (data.customer.identified, data.customer.verified, data.customer.vip) == (False, False, False)
    assert (data.customer.customer_id, data.customer.email) == (None, "ada.lovelace@example.com")  # kept, unverified


async def test_only_a_trusted_relays_results_count(intake: MailIntake) -> None:
    untrusted = message("Re: [HD-12] more", sender="ada.lovelace@example.com",
                        results="mx.attacker.example; dmarc=pass header.from=example.com")  # fmt: skip
    trusted = message("Re: [HD-12] more", sender="ada.lovelace@example.com",
                      results="mx2.helpdesk.example; dkim=pass header.d=example.com header.s=s1")  # fmt: skip
    for mail in (untrusted, trusted):
        assert (await intake.send(mail))[0] == 250
    [from_untrusted] = await intake.identified_for(untrusted["Message-ID"])
    [from_trusted] = await intake.identified_for(trusted["Message-ID"])
    assert (from_untrusted.data.customer.verified, from_untrusted.data.reply_to_number) == (False, None)
    assert (from_trusted.data.customer.customer_id, from_trusted.data.reply_to_number) == ("u-1001", "HD-12")


async def test_a_mail_with_header_breaks_in_its_subject_comes_out_as_one_line(intake: MailIntake) -> None:
    mail = message("Printer")
    raw = mail.as_bytes().replace(b"Subject: Printer", b"Subject: =?utf-8?q?Printer=0D=0AReply-To=3A_eve=40example=2Enet?=")
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=intake.port, timeout=15)
    async with smtp:
        await smtp.sendmail("relay@example.net", ["helpdesk@example.com"], raw)
    [identified] = await intake.identified_for(mail["Message-ID"])
    assert identified.data.subject == "Printer Reply-To: eve@example.net"


async def test_connections_past_the_session_cap_are_answered_421_and_the_cap_frees_up(intake: MailIntake) -> None:
    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", intake.port)
        return reader, writer, await asyncio.wait_for(reader.readline(), 10)

    held = [await connect() for _ in range(MAX_SESSIONS)]
    assert all(greeting.startswith(b"220 ") for _, _, greeting in held)
    _, refused, answer = await connect()
    assert answer.startswith(b"421 ")  # one more than the cap: told at once, and closed
    refused.close()
    _, first, _ = held.pop()
    first.write(b"QUIT\r\n")
    await first.drain()
    first.close()

    async def a_place_again() -> bool:
        _, writer, greeting = await connect()
        writer.close()
        return greeting.startswith(b"220 ")

    assert await wait_for(a_place_again, timeout=10)
    for _, writer, _ in held:
        writer.close()
    await asyncio.sleep(0.2)  # the receiver sees them go before the next test connects
