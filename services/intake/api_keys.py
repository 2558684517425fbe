"""Integrations' API keys, each with what it may do (``INTAKE_API_KEYS``).

    INTAKE_API_KEYS="mailgw=<key>, crm:report+write-directory=sha256:<64 hex digits>"

One entry per integration, separated by commas: ``name[:scope+scope]=key``.

* Scopes: ``report`` (``POST /v1/incidents``, ``/v1/channels/social``,
  ``/v1/channels/phone/events``), ``read-directory`` (``GET
  /v1/customers/...``) and ``write-directory`` (``PUT`` and ``DELETE``, and
  reading). An entry without scopes (``name=key``, the format before scopes)
  may only report.
* The key is given either as the key itself or, better, as ``sha256:`` and
  the hex SHA-256 of the key, so the configuration gives no key away
  (``python -m services.intake.api_keys NAME`` makes a key and its line).

Only digests are kept in memory, and a presented key is compared in constant
time against each, so neither a timing difference nor a heap dump gives a key
away. A request names its key in ``Authorization: Bearer <key>`` or
``X-API-Key``: none or an unknown one is ``401``, a key without the scope
``403``. Without keys intake does not start, unless HELPDESK_DEVELOPMENT is
on: then every endpoint is open (``ApiKeys.open``) and a warning is logged.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import re
import secrets
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from services.intake.api import Rejected

REPORT, READ_DIRECTORY, WRITE_DIRECTORY = "report", "read-directory", "write-directory"
SCOPES = (REPORT, READ_DIRECTORY, WRITE_DIRECTORY)
IMPLIED = {WRITE_DIRECTORY: {READ_DIRECTORY}}  # who may replace an entry may read it
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
_DIGEST = re.compile(r"sha256:([0-9a-fA-F]{64})")


@dataclass(frozen=True)
class Integration:
    name: str
    digest: bytes
    scopes: frozenset[str]


class ApiKeys:
    def __init__(self, spec: str) -> None:
        """The keys of ``spec``; ValueError saying which entry is wrong and how."""
        self._integrations = [_entry(e) for e in (p.strip() for p in spec.split(",")) if e]
        names = [i.name for i in self._integrations]
        if duplicated := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"integration {duplicated[0]!r} is named twice")
        self.open = False

    @classmethod
    def open_to_anyone(cls) -> ApiKeys:
        """Development only: no keys, every endpoint open."""
        keys = cls("")
        keys.open = True
        return keys

    @property
    def configured(self) -> bool:
        return bool(self._integrations)

    def integration(self, key: str) -> Integration | None:
        """The integration whose key this is, or None."""
        given = hashlib.sha256(key.encode()).digest()
        found = None
        for integration in self._integrations:
            if hmac.compare_digest(given, integration.digest):  # no early exit: every key is compared
                found = integration
        return found

    def require(self, scope: str) -> Callable[[Request], Awaitable[None]]:
        """A FastAPI dependency: 401 without a known key, 403 when its integration lacks ``scope``."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")

        async def allowed(request: Request) -> None:
            if self.open:
                return
            header = request.headers.get("authorization", "")
            bearer = header[:7].lower() == "bearer "
            key = header[7:].strip() if bearer else request.headers.get("x-api-key", "").strip()
            if not key:
                raise _unauthorised("send your integration's API key in Authorization: Bearer <key> or X-API-Key")
            integration = self.integration(key)
            if integration is None:
                raise _unauthorised("the API key is not known")
            request.state.integration = integration.name
            if scope not in integration.scopes:
                raise Rejected(
                    403,
                    "Not allowed",
                    f"the key of integration {integration.name!r} has no {scope!r} scope "
                    f"(it has: {', '.join(sorted(integration.scopes))})",
                )

        return allowed


def _entry(entry: str) -> Integration:
    who, equals, key = entry.partition("=")
    name, colon, scope_list = who.strip().partition(":")
    if not (equals and name and key.strip()):
        raise ValueError(
            f"expected name=key or name:scope+scope=key, got {who.strip()!r}=... (entries are separated by commas)"
        )
    if not _NAME.fullmatch(name):
        raise ValueError(f"integration name {name!r}: use 1-100 letters, digits, '.', '_' or '-'")
    scopes = {s.strip() for s in scope_list.split("+")} if colon else {REPORT}
    if unknown := sorted(scopes - set(SCOPES)):
        raise ValueError(f"{name}: unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)} (joined with +)")
    for scope in list(scopes):
        scopes |= IMPLIED.get(scope, set())
    return Integration(name, _digest(key.strip()), frozenset(scopes))


def _digest(key: str) -> bytes:
    """``sha256:<hex>`` is a key's digest as configured; anything else is the key itself."""
    if (given := _DIGEST.fullmatch(key)) is not None:
        return bytes.fromhex(given.group(1))
    return hashlib.sha256(key.encode()).digest()


def _unauthorised(detail: str) -> Rejected:
    rejected = Rejected(401, "Unauthorised", detail)
    rejected.headers["WWW-Authenticate"] = 'Bearer realm="helpdesk-intake"'
    return rejected


def main(argv: list[str] | None = None) -> int:
    """``python -m services.intake.api_keys crm --scopes report+write-directory``: a new key and its entry."""
    parser = argparse.ArgumentParser(prog="python -m services.intake.api_keys", description=main.__doc__)
    parser.add_argument("name", help="the integration's name")
    parser.add_argument("--scopes", default=REPORT, help=f"joined with +: {', '.join(SCOPES)} (default {REPORT})")
    args = parser.parse_args(argv)
    key = secrets.token_urlsafe(32)
    entry = f"{args.name}:{args.scopes}=sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    try:
        _entry(entry)
    except ValueError as exc:
        parser.error(str(exc))
    print(key)  # the key alone on stdout, for the integration
    print(f"add to INTAKE_API_KEYS (comma-separated): {entry}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
