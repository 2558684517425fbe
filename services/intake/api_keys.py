"""API keys for integrations (``INTAKE_API_KEYS="mailgw=k1,crm=k2"``).

Only SHA-256 digests of the keys are kept in memory, and a presented key is
compared in constant time against each, so neither a timing difference nor a
heap dump gives a key away. A request names its key in ``Authorization:
Bearer <key>`` or ``X-API-Key``. With no keys configured the endpoints are
open (a warning is logged at start-up).
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from services.intake.api import Rejected


class ApiKeys:
    def __init__(self, spec: str) -> None:
        self._digests: dict[str, bytes] = {}
        for pair in filter(None, (p.strip() for p in spec.split(","))):
            name, _, key = pair.partition("=")
            if not (name.strip() and key.strip()):
                raise ValueError(f"expected name=key pairs separated by commas, got {pair.split('=')[0]!r}=...")
            self._digests[name.strip()] = _digest(key.strip())

    @property
    def required(self) -> bool:
        return bool(self._digests)

    def integration(self, key: str) -> str | None:
        """The name of the integration whose key this is, or None."""
        given = _digest(key)
        found = None
        for name, digest in self._digests.items():
            if hmac.compare_digest(given, digest):  # no early exit: every key is compared
                found = name
        return found

    async def __call__(self, request: Request) -> None:
        """A FastAPI dependency: 401 unless the request carries a known key."""
        if not self.required:
            return
        header = request.headers.get("authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else request.headers.get("x-api-key", "").strip()
        if not key:
            raise _unauthorised("send your integration's API key in Authorization: Bearer <key> or X-API-Key")
        name = self.integration(key)
        if name is None:
            raise _unauthorised("the API key is not known")
        request.state.integration = name


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _unauthorised(detail: str) -> Rejected:
    rejected = Rejected(401, "Unauthorised", detail)
    rejected.headers["WWW-Authenticate"] = 'Bearer realm="helpdesk-intake"'
    return rejected
