"""The e-mail channel: an SMTP receiver (aiosmtpd) inside the intake process.

A mail relay (Postfix, Exchange, a cloud provider's inbound route) delivers
to it. The answer to DATA is given only after the incident is on the
reported topic: ``250`` means stored; ``451`` means not stored, the relay
keeps the mail and tries again (the same Message-ID makes it the same
incident); ``554`` means the mail can never become an incident (no sender,
unreadable), and ``552`` (from aiosmtpd) that it is larger than allowed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from runtime.logs import get_logger
from services.intake.adapters.ticket_threads import TicketThreads, mail_thread
from services.intake.channels.mail import Mail, MalformedMail, read_mail
from services.intake.reporting import CONTACTS, Flooded, NotAcknowledged, Reporter

log = get_logger("intake.smtp")


class MailReceiver:
    """aiosmtpd's handler: every mail accepted for any recipient becomes an incident."""

    def __init__(self, reporter: Reporter, threads: TicketThreads) -> None:
        self._reporter = reporter
        self._threads = threads

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's name
        content = envelope.original_content or b""
        mail_from = envelope.mail_from if isinstance(envelope.mail_from, str) else None
        try:
            data, thread = read_mail(Mail(content, mail_from), datetime.now(UTC))
        except MalformedMail as exc:
            CONTACTS.labels("email", "malformed").inc()
            log.warning("mail refused", reason=str(exc), mail_from=mail_from, peer=str(session.peer))
            return f"554 5.6.0 Not accepted: {exc}"
        if data.reply_to_number is None and thread:
            # An answer to one of our mails: the resolution mail's Message-ID names its ticket.
            number = await self._threads.number_of([mail_thread(m) for m in thread])
            data = data.model_copy(update={"reply_to_number": number})
        try:
            await self._reporter.report(data)
        except Flooded:
            return "550 5.7.1 Too many messages from this sender; refused (mail loop protection)"
        except NotAcknowledged:
            return "451 4.3.0 Not stored, please try again later"
        return f"250 2.0.0 Accepted as incident {data.channel_message_id}"


class SmtpTooLarge(SMTP):
    """Counts mails refused for their size (aiosmtpd answers 552 itself)."""

    async def push(self, status: str) -> None:
        if status.startswith("552"):
            CONTACTS.labels("email", "too_large").inc()
        await super().push(status)


async def serve_smtp(receiver: MailReceiver, host: str, port: int, max_bytes: int, hostname: str) -> None:
    """Listen on ``host:port`` until cancelled (run as a service worker, so it starts after Kafka)."""

    def session() -> Any:
        return SmtpTooLarge(receiver, data_size_limit=max_bytes, enable_SMTPUTF8=True, hostname=hostname, timeout=60)

    server = await asyncio.get_running_loop().create_server(session, host, port)
    log.info("smtp receiver listening", host=host, port=port, max_bytes=max_bytes)
    try:
        await asyncio.Event().wait()
    finally:
        server.close()
        await server.wait_closed()
