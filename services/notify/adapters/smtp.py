"""Handing e-mails to the SMTP server (aiosmtplib), and building their MIME messages.

A message has a plain-text body with an HTML alternative, the deterministic
Message-ID of its :class:`~services.notify.domain.Notification`, and, when it
follows earlier mail (the customer's first message), ``In-Reply-To`` and
``References`` so mail clients show one conversation. A batch of e-mails goes
through one SMTP connection (:meth:`SmtpMailer.session`): connecting and
logging in once per e-mail would cap the rate far below what the consumer can
do. Sending raises on any failure (refused, timed out, unreachable): the
consumer then retries with backoff and finally dead-letters the cause.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from email.header import Header
from email.utils import format_datetime

import aiosmtplib

from services.notify.adapters.headers import header_value
from services.notify.config import Settings
from services.notify.domain import Notification
from services.notify.rendering import Rendered


def _header(name: str, value: str) -> str:
    """A header value as SMTP carries it: on one line (``headers.py``: the subject folded, any other refused),
    then the subject RFC 2047 encoded when it is not ASCII (and folded: the only line breaks a header may hold)."""
    value = header_value(name, value, free_text=name == "Subject")
    if name == "Subject" and not value.isascii():
        return Header(value, "utf-8").encode(linesep="\r\n")
    return value


def _part(content_type: str, text: str) -> list[str]:
    encoded = base64.encodebytes(text.encode()).decode().replace("\n", "\r\n")
    return [f"Content-Type: {content_type}; charset=\"utf-8\"", "Content-Transfer-Encoding: base64", "", encoded]


def build_message(email: Notification, body: Rendered, *, sender: str, date: datetime) -> bytes:
    """The message as it goes over SMTP (CRLF line ends).

    Written out directly rather than through the ``email`` package: its header
    folding was most of the CPU an e-mail cost, and these headers are simple.
    Every header value passes :func:`_header`: the subject is folded onto one
    line, and a line break in any other value (the address above all, which
    is also the SMTP envelope's recipient) raises ``headers.UnsafeHeader``
    before anything is sent.
    """
    boundary = f"=_helpdesk_{uuid.uuid5(uuid.NAMESPACE_URL, email.notification_key).hex}"
    headers = {"From": sender, "To": email.to, "Subject": email.subject, "Message-ID": email.message_id,
               "Date": format_datetime(date)}
    if email.thread:
        headers["In-Reply-To"] = email.thread[-1]
        headers["References"] = " ".join(email.thread)
    headers["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders do not answer it
    if email.number:
        headers["X-Helpdesk-Ticket"] = email.number
    headers["MIME-Version"] = "1.0"
    headers["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
    lines = [f"{name}: {_header(name, value)}" for name, value in headers.items()]
    lines += ["", f"--{boundary}", *_part("text/plain", body.text), f"--{boundary}", *_part("text/html", body.html),
              f"--{boundary}--", ""]
    return "\r\n".join(lines).encode()


class SmtpSession:
    """One SMTP connection, opened at the first e-mail of a batch and reused for the rest."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None

    async def send(self, sender: str, to: str, message: bytes) -> None:
        client = await self._connected()
        try:
            await client.sendmail(sender, [to], message)
        except Exception:
            await self.close()  # the connection's state is unknown: the next e-mail opens a fresh one
            raise

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            start_tls=s.smtp_starttls,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout_s,
        )
        await client.connect()
        self._client = client
        return client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except Exception:  # noqa: BLE001 - closing a broken connection: nothing left to save
                client.close()


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def sender(self) -> str:
        return self._settings.smtp_from

    @asynccontextmanager
    async def session(self) -> AsyncIterator[SmtpSession]:
        session = SmtpSession(self._settings)
        try:
            yield session
        finally:
            await session.close()

    async def send(self, to: str, message: bytes) -> None:
        async with self.session() as session:
            await session.send(self.sender, to, message)
