"""Telling which ticket a contact answers (pure).

A customer answering us quotes the ticket number: in the subject of a mail
(``Re: [HD-12] Resolved: ...``), in the text of an SMS, or implicitly by
replying to one of our mails, whose Message-ID carries the number when the
notify service puts it there (``<resolved.<event id>.HD-12@helpdesk>``).
The ticket service decides whether the number is an open ticket of that
customer; here we only read it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NUMBER = re.compile(r"(?<![A-Za-z0-9])HD-(\d{1,12})(?![0-9])", re.IGNORECASE)
_OUR_MESSAGE_ID = re.compile(r"<[^<>@\s]*?(?<![A-Za-z0-9])HD-(\d{1,12})(?![0-9])[^<>@\s]*@helpdesk>", re.IGNORECASE)


def number_in(text: str | None) -> str | None:
    """The first ticket number written in ``text`` (``HD-12``, any case), normalised; else None."""
    if not text:
        return None
    match = _NUMBER.search(text)
    return f"HD-{int(match.group(1))}" if match else None


def number_in_thread(message_ids: Iterable[str]) -> str | None:
    """The ticket number of the most recent of our own mails among ``message_ids`` (In-Reply-To first)."""
    for value in message_ids:
        if match := _OUR_MESSAGE_ID.search(value):
            return f"HD-{int(match.group(1))}"
    return None
