"""Whether a mail's sender is who the From: header says (pure): the receiving relay's Authentication-Results.

Anyone can write any From: address. The mail relay that received the mail
from the internet checks SPF, DKIM and DMARC and records what it found in an
``Authentication-Results`` header (RFC 8601) named by its *authserv-id*::

    Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=example.com;
        dkim=pass header.d=example.com; dmarc=pass header.from=example.com

Only headers carrying an authserv-id the desk trusts count (the sender can add
headers of their own with any name in them), and of those only the topmost
ones: a relay prepends its header, so what the sender wrote is below it. The
relay must also remove headers with its own authserv-id from incoming mail
(RFC 8601 section 5; Postfix with OpenDMARC, rspamd, Exchange Online do).

The sender is verified when DMARC passed, or (for a relay that checks no
DMARC) when SPF or DKIM passed for the From: address's domain or a domain
related to it (one a subdomain of the other: the DMARC notion of alignment,
without the public suffix list, so a stricter one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|;|[^\s;"]+')


@dataclass(frozen=True)
class MailTrust:
    """What the desk believes of the relay in front of it."""

    trusted_authserv_ids: frozenset[str] = frozenset()
    required: bool = True  # False: the site's relay adds no results; every From: is taken as it is


@dataclass(frozen=True)
class Result:
    """One ``method=result`` of a trusted header, with its properties (``header.from``, ``smtp.mailfrom``, ...)."""

    method: str
    result: str
    properties: dict[str, str] = field(default_factory=dict)


def sender_verified(headers: Iterable[str], from_domain: str | None, trust: MailTrust) -> bool:
    """Whether ``from_domain`` (the From: address's domain) is authenticated by the trusted relay's results."""
    if not trust.required:
        return True
    if not from_domain:
        return False
    results = trusted_results(headers, trust.trusted_authserv_ids)
    dmarc = next((r for r in results if r.method == "dmarc"), None)
    if dmarc is not None:  # the relay checked DMARC: its verdict decides
        said_from = dmarc.properties.get("header.from")
        return dmarc.result == "pass" and (said_from is None or _aligned(said_from, from_domain))
    spf = next((r for r in results if r.method == "spf"), None)
    if spf is not None and spf.result == "pass" and _aligned(_domain(spf.properties.get("smtp.mailfrom")), from_domain):
        return True
    signers = (r.properties.get("header.d") or _domain(r.properties.get("header.i")) for r in results if _passed_dkim(r))
    return any(_aligned(signer, from_domain) for signer in signers)


def _passed_dkim(result: Result) -> bool:
    return result.method == "dkim" and result.result == "pass"


def trusted_results(headers: Iterable[str], trusted: frozenset[str]) -> list[Result]:
    """The results of the topmost Authentication-Results headers, down to the first whose authserv-id is not trusted.

    ``headers`` in the order they appear in the mail (the topmost first). Within them, the first result of a
    method is the one the closest relay wrote.
    """
    results: list[Result] = []
    for header in headers:
        parts = _resinfo_groups(_without_comments(header))
        if not parts or not parts[0] or parts[0][0].lower() not in trusted:
            break
        for resinfo in parts[1:]:
            if (result := _result(resinfo)) is not None:
                results.append(result)
    return results


def _result(tokens: list[str]) -> Result | None:
    if not tokens or "=" not in tokens[0]:
        return None  # 'none', or a malformed entry
    method, _, outcome = tokens[0].partition("=")
    properties = {}
    for token in tokens[1:]:
        name, equals, value = token.partition("=")
        if equals and "." in name:
            properties[name.lower()] = value.strip('"').lower()
    return Result(method.split("/")[0].lower(), outcome.strip('"').lower(), properties)


def _resinfo_groups(text: str) -> list[list[str]]:
    """The header split at ';' into lists of tokens; ``name="quoted value"`` stays one token."""
    groups: list[list[str]] = [[]]
    for token in _TOKEN.findall(text):
        if token == ";":
            groups.append([])
        elif token.startswith('"') and groups[-1] and groups[-1][-1].endswith("="):
            groups[-1][-1] += token
        else:
            groups[-1].append(token)
    return groups


def _without_comments(text: str) -> str:
    """``text`` without RFC 5322 comments (parenthesised, possibly nested; not inside quotes)."""
    out, depth, quoted, escaped = [], 0, False, False
    for char in " ".join(text.split()):
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
        elif char == '"' and depth == 0:
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
            continue
        elif not quoted and char == ")" and depth:
            depth -= 1
            continue
        if depth == 0:
            out.append(char)
    return "".join(out)


def _domain(address: str | None) -> str | None:
    return address.rpartition("@")[2] or None if address else None


def _aligned(domain: str | None, from_domain: str) -> bool:
    if not domain:
        return False
    a, b = domain.strip(".").lower(), from_domain.strip(".").lower()
    if "." not in a or "." not in b:
        return False  # a top-level domain aligns with nothing
    return a == b or a.endswith("." + b) or b.endswith("." + a)
