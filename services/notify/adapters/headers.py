"""Header values notify writes (e-mail and HTTP): never a line break or another control character.

A value copied into a header from a message (a customer's subject, an address,
a Message-ID a channel reported) could otherwise end its header line and start
another header, or the body: ``Subject: x\\r\\nReply-To: attacker@evil.test``.
Every header notify sends goes through :func:`header_value`:

* free text (a subject): every run of control characters (CR, LF and the rest
  of C0 but TAB, DEL, C1, and the Unicode line and paragraph separators) is
  folded into one space, so the mail still goes out, with its subject on one line;
* anything else (addresses, message ids, keys): a control character refuses
  the value (:class:`UnsafeHeader`), and the notification with it. It is never
  retried: the same value is refused the same way every time.
"""

from __future__ import annotations

import re

# Free text: C0 controls but TAB (legal in a header's whitespace), DEL, C1 (NEL among them), U+2028, U+2029;
# a run of them, with the blanks around it, becomes one space.
_FOLDED = re.compile("[ \t]*[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029][\x00-\x1f\x7f-\x9f\u2028\u2029 ]*")
# Anything else: TAB too (no address, id or key has one).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class UnsafeHeader(ValueError):
    """A header value holding a line break or another control character: the notification is refused."""

    def __init__(self, name: str, value: str) -> None:
        found = _CONTROLS.search(value)
        char = f"U+{ord(found.group()):04X}" if found else "a control character"
        super().__init__(f"refused: the {name} header value {value[:200]!r} holds {char} (a line break "
                         "or another control character could add headers or a body)")
        self.header = name


def header_value(name: str, value: str, *, free_text: bool = False) -> str:
    """``value`` fit for header ``name``: folded to one line (``free_text``), else refused if it is not."""
    if free_text:
        return _FOLDED.sub(" ", value)
    if _CONTROLS.search(value):
        raise UnsafeHeader(name, value)
    return value
