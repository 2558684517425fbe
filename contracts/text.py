"""Checks on the text fields of messages that end up in mail headers and language choices.

Plain functions, used as pydantic validators by the contracts: a field that
holds one line (a subject, a name), an e-mail address, a language tag.
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

# C0 and C1 controls (CR, LF, TAB, NUL, ESC, NEL, ...), DEL, and the Unicode line and paragraph separators.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# RFC 5646 section 2.1, the well-formed "langtag" and "privateuse" productions (irregular grandfathered tags
# such as i-klingon are deprecated and not taken).
_LANGUAGE_TAG = re.compile(
    r"""
    (?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4,8})   # language, with up to three extended subtags
    (?:-[a-z]{4})?                                # script
    (?:-(?:[a-z]{2}|[0-9]{3}))?                   # region
    (?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*      # variants
    (?:-[0-9a-wy-z](?:-[a-z0-9]{2,8})+)*          # extensions
    (?:-x(?:-[a-z0-9]{1,8})+)?                    # private use
    |x(?:-[a-z0-9]{1,8})+
    """,
    re.VERBOSE | re.IGNORECASE,
)
MAX_LANGUAGE_TAG = 35


def one_line(value: object) -> object:
    """``value`` with every run of whitespace and control characters folded to one space, trimmed."""
    if not isinstance(value, str):
        return value
    return " ".join(_CONTROLS.sub(" ", value).split())


def email_address(value: object) -> object:
    """The address in email-validator's normal form (syntax only, no DNS); blank is None; ValueError if it is none."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    normal, problem = _checked_address(value.strip())
    if problem is not None:
        raise ValueError(f"{value.strip()[:80]!r} is not an e-mail address ({problem})")
    return normal


@lru_cache(maxsize=16_384)
def _checked_address(address: str) -> tuple[str | None, str | None]:
    """(normal form, None) or (None, what is wrong). Cached: one address is checked in every message of an
    incident (reported, identified, each reader of ticket.opened), and email-validator costs ~0.1 ms a time."""
    try:
        return validate_email(address, check_deliverability=False).normalized, None
    except EmailNotValidError as exc:
        return None, str(exc)


def email_address_or_none(value: object) -> object:
    """Like :func:`email_address`, but an unusable address is None instead of an error."""
    try:
        return email_address(value)
    except ValueError:
        return None


def language_tag(value: object) -> object:
    """A well-formed BCP 47 tag in its conventional case ('de-CH', 'zh-Hant'); blank is None; ValueError if not one."""
    if not isinstance(value, str):
        return value
    tag = value.strip()
    if not tag:
        return None
    if len(tag) > MAX_LANGUAGE_TAG or not _LANGUAGE_TAG.fullmatch(tag):
        raise ValueError(f"{tag[:40]!r} is not a BCP 47 language tag (e.g. 'de', 'en-GB', 'zh-Hant-TW')")
    return _conventional_case(tag)


def _conventional_case(tag: str) -> str:
    """RFC 5646 section 2.1.1: language lower case, script title case, region upper case, the rest lower case."""
    subtags = tag.lower().split("-")
    cased = [subtags[0]]
    singleton_seen = len(subtags[0]) == 1  # 'x-...' private use
    for subtag in subtags[1:]:
        if len(subtag) == 1:
            singleton_seen = True
        if not singleton_seen and len(subtag) == 4 and subtag.isalpha():
            subtag = subtag.title()
        elif not singleton_seen and len(subtag) == 2:
            subtag = subtag.upper()
        cased.append(subtag)
    return "-".join(cased)
