"""Reading an e-mail into an incident (pure: bytes in, incident data or a rejection out).

The sender is the contact; the subject is the subject; the text part (or the
HTML part made into text) is the description; attachments are listed with
name, type and size. The Message-ID is the channel message id, so a mail
delivered twice (a relay retrying after a lost ``250``) is one incident; a
mail without one gets an id derived from its bytes, which a retry repeats.

The From: address is only a claim until the receiving relay's
Authentication-Results say it passed (``mail_authentication.py``). A mail
whose sender is not verified is kept as an unverified contact: it opens a
ticket of its own, never a reply on a customer's ticket, and the customer is
not identified by its address. The customer's language comes from
``Accept-Language`` (what they read) or else ``Content-Language`` (what they
wrote in).
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
from contracts.text import email_address, language_tag, one_line
from services.intake.channels.mail_authentication import MailTrust, sender_verified
from services.intake.replies import number_in, number_in_thread

MAX_SUBJECT = 300
MAX_DESCRIPTION = 100_000
MAX_ATTACHMENTS = 100
MAX_MESSAGE_ID = 200
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
TRUST_EVERY_SENDER = MailTrust(required=False)


class MalformedMail(ValueError):
    """The mail cannot become an incident; the text says why (it goes back in the SMTP reply)."""


@dataclass(frozen=True)
class Mail:
    """What the SMTP conversation says besides the message: the envelope sender."""

    content: bytes
    mail_from: str | None = None


def incident_from_mail(
    mail: Mail, received_at: datetime, trust: MailTrust = TRUST_EVERY_SENDER
) -> IncidentReportedData:
    """The incident a mail reports, or :class:`MalformedMail`."""
    return read_mail(mail, received_at, trust)[0]


def read_mail(
    mail: Mail, received_at: datetime, trust: MailTrust = TRUST_EVERY_SENDER
) -> tuple[IncidentReportedData, list[str]]:
    """The incident a mail reports and the Message-IDs it answers (most recent first); or :class:`MalformedMail`.

    A mail whose sender ``trust`` does not verify answers nothing: no reply number, no thread.
    """
    try:
        message = email.message_from_bytes(mail.content, policy=email.policy.default)
        return _incident(message, mail, received_at, trust)
    except MalformedMail:
        raise
    except Exception as exc:  # noqa: BLE001 - the email package raises many kinds on broken input
        raise MalformedMail(f"cannot read the message ({type(exc).__name__})") from None


def _incident(
    message: EmailMessage, mail: Mail, received_at: datetime, trust: MailTrust
) -> tuple[IncidentReportedData, list[str]]:
    if message.defects and not message.keys():
        raise MalformedMail("no header section")
    name, address, unreadable_from = _sender(message, mail.mail_from)
    verified = sender_verified(_all(message, "Authentication-Results"), _domain(address), trust)
    subject = one_line(str(message.get("Subject", "") or ""))[:MAX_SUBJECT] or "(no subject)"  # type: ignore[index]
    text, html, attachments = _parts(message)
    thread = _message_ids(message.get("In-Reply-To")) + list(reversed(_message_ids(message.get("References"))))
    if not verified:
        thread = []  # anyone can write In-Reply-To or [HD-12]: an unverified sender opens a ticket of their own
    description = (text if text.strip() else html_to_text(html)).strip()
    if unreadable_from:
        description += f"\n\n(No address to answer to: the From: header was {unreadable_from!r}.)"
    data = IncidentReportedData(
        channel=Channel.EMAIL,
        channel_message_id=_channel_message_id(message, mail.content),
        received_at=received_at,
        contact=ContactDetails(email=address, name=name),
        contact_verified=verified,
        subject=subject,
        description=description[:MAX_DESCRIPTION],
        attachments=attachments[:MAX_ATTACHMENTS],
        reply_to_number=(number_in(subject) or number_in_thread(thread)) if verified else None,
        language=mail_language(message),
    )
    return data, thread


def _sender(message: EmailMessage, mail_from: str | None) -> tuple[str | None, str | None, str | None]:
    """The From header's name and address; the envelope sender when the header has none that is valid.

    With no valid address at all the mail is still taken (nothing a customer sent is dropped): the
    contact has no address, and the third value is the From: header as it was, for the agent.
    """
    raw_from = str(message.get("From", "") or "")
    name = None
    for display, address in getaddresses([raw_from]):
        name = name or (one_line(display)[:200] or None)  # type: ignore[index]
        if (valid := _valid_address(address)) is not None:
            return (one_line(display)[:200] or None), valid, None  # type: ignore[index]
    if (valid := _valid_address(mail_from)) is not None:
        return name, valid, None
    return name, None, one_line(raw_from)[:200] or "(none)"  # type: ignore[index]


def _valid_address(address: str | None) -> str | None:
    if not address or len(address) > 320:
        return None
    try:
        return email_address(address)  # type: ignore[return-value]
    except ValueError:
        return None


def _domain(address: str | None) -> str | None:
    return address.rpartition("@")[2] if address else None


def _all(message: EmailMessage, name: str) -> list[str]:
    return [str(value) for value in message.get_all(name) or []]


def mail_language(message: EmailMessage) -> str | None:
    """The reader's language (Accept-Language, best first), else the text's (Content-Language); None if neither."""
    for header in ("Accept-Language", "Content-Language"):
        if (tag := _preferred_language(str(message.get(header, "") or ""))) is not None:
            return tag
    return None


def _preferred_language(header: str) -> str | None:
    """The valid tag with the highest q in ``de-CH, de;q=0.9, en;q=0.8`` (the first among equals)."""
    ranked = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        try:
            valid = language_tag(tag.strip()) if tag.strip() != "*" else None
        except ValueError:
            valid = None
        if isinstance(valid, str) and quality > 0:
            ranked.append((-quality, position, valid))
    return min(ranked)[2] if ranked else None


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
