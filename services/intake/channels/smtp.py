"""The e-mail channel: an SMTP receiver (aiosmtpd) inside the intake process.

A mail relay (Postfix, Exchange, a cloud provider's inbound route) delivers
to it. The answer to DATA is given only after the incident is on the
reported topic: ``250`` means stored; ``451`` means not stored, the relay
keeps the mail and tries again (the same Message-ID makes it the same
incident), whether Kafka did not acknowledge or the sender is over the flood
limit (a temporary refusal: a customer is never locked out for good);
``554`` means the mail can never become an incident (unreadable), and
``552`` (from aiosmtpd) that it is larger than allowed.

At most ``max_sessions`` connections are served at once; one more is
answered ``421`` at once and closed (the relay tries again later), so a
burst of connections cannot exhaust the process.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client import Counter

from runtime.logs import get_logger
from services.intake.adapters.ticket_threads import TicketThreads, mail_thread
from services.intake.channels.mail import Mail, MalformedMail, read_mail
from services.intake.channels.mail_authentication import MailTrust
from services.intake.reporting import CONTACTS, Flooded, NotAcknowledged, Reporter

SESSIONS_REFUSED = Counter(
    "helpdesk_intake_smtp_sessions_refused_total", "SMTP connections answered 421: INTAKE_SMTP_MAX_SESSIONS were open."
)
TOO_MANY_SESSIONS = b"421 4.7.0 Too many connections; try again later\r\n"
log = get_logger("intake.smtp")


class MailReceiver:
    """aiosmtpd's handler: every mail accepted for any recipient becomes an incident."""

    def __init__(self, reporter: Reporter, threads: TicketThreads, trust: MailTrust) -> None:
        self._reporter = reporter
        self._threads = threads
        self._trust = trust

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's name
        content = envelope.original_content or b""
        mail_from = envelope.mail_from if isinstance(envelope.mail_from, str) else None
        try:
            data, thread = read_mail(Mail(content, mail_from), datetime.now(UTC), self._trust)
        except MalformedMail as exc:
            CONTACTS.labels("email", "malformed").inc()
            log.warning("mail refused", reason=str(exc), mail_from=mail_from, peer=str(session.peer))
            return f"554 5.6.0 Not accepted: {exc}"
        if data.reply_to_number is None and thread:
            # An answer to one of our mails: the resolution mail's Message-ID names its ticket.
            number = await self._threads.number_of([mail_thread(m) for m in thread])
            data = data.model_copy(update={"reply_to_number": number})
        peer = session.peer[0] if isinstance(session.peer, tuple) and session.peer else None
        try:
            await self._reporter.report(data, peer=peer)
        except Flooded:
            # Temporary: the relay keeps the mail and tries later; a burst in someone's name never bounces theirs.
            return "451 4.7.1 Too many messages from this sender; try again later (mail loop protection)"
        except NotAcknowledged:
            return "451 4.3.0 Not stored, please try again later"
        return f"250 2.0.0 Accepted as incident {data.channel_message_id}"


class Sessions:
    """How many SMTP sessions are open, against the most allowed."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.open = 0


class SmtpSession(SMTP):
    """One SMTP connection: holds its place among the open sessions until it is lost; counts mails refused for
    their size (aiosmtpd answers 552 itself)."""

    def __init__(self, handler: MailReceiver, sessions: Sessions, **options: Any) -> None:
        super().__init__(handler, **options)
        self._sessions = sessions
        sessions.open += 1  # taken when the connection is accepted, so a burst of accepts cannot overshoot

    def connection_lost(self, error: Exception | None) -> None:
        self._sessions.open -= 1
        super().connection_lost(error)

    async def push(self, status: str) -> None:
        if status.startswith("552"):
            CONTACTS.labels("email", "too_large").inc()
        await super().push(status)


class TooManySessions(asyncio.Protocol):
    """A connection over the limit: told 421 at once (RFC 5321 section 3.8) and closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        SESSIONS_REFUSED.inc()
        transport.write(TOO_MANY_SESSIONS)  # type: ignore[attr-defined]
        transport.close()


async def serve_smtp(
    receiver: MailReceiver, host: str, port: int, max_bytes: int, hostname: str, max_sessions: int
) -> None:
    """Listen on ``host:port`` until cancelled (run as a service worker, so it starts after Kafka)."""
    sessions = Sessions(max_sessions)

    def session() -> asyncio.Protocol:
        if sessions.open >= sessions.most:
            return TooManySessions()
        return SmtpSession(
            receiver, sessions, data_size_limit=max_bytes, enable_SMTPUTF8=True, hostname=hostname, timeout=60
        )

    server = await asyncio.get_running_loop().create_server(session, host, port)
    log.info("smtp receiver listening", host=host, port=port, max_bytes=max_bytes, max_sessions=max_sessions)
    try:
        await asyncio.Event().wait()
    finally:
        server.close()
        await server.wait_closed()
