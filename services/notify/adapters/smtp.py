"""Handing an e-mail to the SMTP server (aiosmtplib), and building its MIME message.

The message has a plain-text body with an HTML alternative, and the
deterministic Message-ID of its :class:`~services.notify.domain.Email`.
Sending raises on any failure (refused, timed out, unreachable): the consumer
then retries with backoff and finally dead-letters the cause.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from services.notify.config import Settings
from services.notify.domain import Email
from services.notify.rendering import Rendered


def build_message(email: Email, body: Rendered, *, sender: str, date: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Message-ID"] = email.message_id
    message["Date"] = format_datetime(date)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders do not answer it
    message.set_content(body.text)
    message.add_alternative(body.html, subtype="html")
    return message


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def sender(self) -> str:
        return self._settings.smtp_from

    async def send(self, message: EmailMessage) -> None:
        s = self._settings
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            start_tls=s.smtp_starttls,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout_s,
        )
