"""Reading an e-mail into an incident (pure: bytes in, incident data or a rejection out).

The sender is the contact; the subject is the subject; the text part (or the
HTML part made into text) is the description; attachments are listed with
name, type and size. The Message-ID is the channel message id, so a mail
delivered twice (a relay retrying after a lost ``250``) is one incident; a
mail without one gets an id derived from its bytes, which a retry repeats.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses
from html.parser import HTMLParser

from contracts.incidents import (
    Attachment,
    Channel,
    ContactDetails,
    IncidentReportedData,
)
from services.intake.replies import number_in, number_in_thread

MAX_SUBJECT = 300
MAX_DESCRIPTION = 100_000
MAX_ATTACHMENTS = 100
MAX_MESSAGE_ID = 200
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


class MalformedMail(ValueError):
    """The mail cannot become an incident; the text says why (it goes back in the SMTP reply)."""


@dataclass(frozen=True)
class Mail:
    """What the SMTP conversation says besides the message: the envelope sender."""

    content: bytes
    mail_from: str | None = None


def incident_from_mail(mail: Mail, received_at: datetime) -> IncidentReportedData:
    """The incident a mail reports, or :class:`MalformedMail`."""
    return read_mail(mail, received_at)[0]


def read_mail(mail: Mail, received_at: datetime) -> tuple[IncidentReportedData, list[str]]:
    """The incident a mail reports and the Message-IDs it answers (most recent first); or :class:`MalformedMail`."""
    try:
        message = email.message_from_bytes(mail.content, policy=email.policy.default)
        return _incident(message, mail, received_at)
    except MalformedMail:
        raise
    except Exception as exc:  # noqa: BLE001 - the email package raises many kinds on broken input
        raise MalformedMail(f"cannot read the message ({type(exc).__name__})") from None


def _incident(message: EmailMessage, mail: Mail, received_at: datetime) -> tuple[IncidentReportedData, list[str]]:
    if message.defects and not message.keys():
        raise MalformedMail("no header section")
    name, address = _sender(message, mail.mail_from)
    subject = " ".join(str(message.get("Subject", "") or "").split())[:MAX_SUBJECT] or "(no subject)"
    text, html, attachments = _parts(message)
    thread = _message_ids(message.get("In-Reply-To")) + list(reversed(_message_ids(message.get("References"))))
    data = IncidentReportedData(
        channel=Channel.EMAIL,
        channel_message_id=_channel_message_id(message, mail.content),
        received_at=received_at,
        contact=ContactDetails(email=address, name=name),
        subject=subject,
        description=(text if text.strip() else html_to_text(html)).strip()[:MAX_DESCRIPTION],
        attachments=attachments[:MAX_ATTACHMENTS],
        reply_to_number=number_in(subject) or number_in_thread(thread),
    )
    return data, thread


def _sender(message: EmailMessage, mail_from: str | None) -> tuple[str | None, str]:
    """The From header's name and address; the envelope sender when the header has none."""
    for name, address in getaddresses([str(message.get("From", "") or "")]):
        if _ADDRESS.match(address) and len(address) <= 320:
            return (" ".join(name.split())[:200] or None), address
    if mail_from and _ADDRESS.match(mail_from) and len(mail_from) <= 320:
        return None, mail_from
    raise MalformedMail("no sender address (From header or MAIL FROM) to answer to")


def _channel_message_id(message: EmailMessage, content: bytes) -> str:
    ids = _message_ids(message.get("Message-ID"))
    if ids and len(ids[0]) <= MAX_MESSAGE_ID:
        return ids[0]
    return "sha256:" + hashlib.sha256(content).hexdigest()


def _message_ids(header: object) -> list[str]:
    return _MESSAGE_ID.findall(str(header or ""))


def _parts(message: EmailMessage) -> tuple[str, str, list[Attachment]]:
    text, html, attachments = "", "", []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = part.get_filename()
        if filename or part.get_content_disposition() == "attachment" or not content_type.startswith("text/"):
            payload = part.get_payload(decode=True) or b""
            attachments.append(
                Attachment(
                    filename=(filename or None) and filename[:300],
                    content_type=content_type[:200],
                    size_bytes=len(payload),
                )
            )
        elif content_type == "text/plain" and not text:
            text = _text_of(part)
        elif content_type == "text/html" and not html:
            html = _text_of(part)
    return text, html, attachments


def _text_of(part: EmailMessage) -> str:
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("utf-8", errors="replace")


class _TextOfHtml(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title"})
    _BREAK = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAK:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BREAK:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    """The readable text of an HTML body: tags dropped, scripts and styles skipped, paragraphs kept apart."""
    if not html:
        return ""
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.chunks).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
