"""Who is calling, and what they may do: agents', leads' and customers' JWTs, integrations' API keys.

A JWT (HS256 only, so a token naming ``none`` or an asymmetric algorithm keyed
with our secret is refused; issuer, audience and expiry required) says who
the caller is (``sub``) and their ``roles``: ``agent`` and/or ``lead`` for the
help desk's people, ``customer`` for a customer (``sub`` is then the
customer's directory id, the ``customer_id`` on their tickets). An
integration sends ``X-API-Key: <key>``; only the keys' sha256 digests are
configured (``TICKETS_API_KEYS``), and a presented key is compared against
each in constant time.

:func:`authenticate` turns a request's credentials into a :class:`Caller`
(401 when there are none or they are bad); :func:`allow` says whether the
caller's kind may take an action (403 if not); :func:`may_see` whether a
ticket is theirs to see at all (the API answers 404 if not, so a customer
learns nothing of other customers' tickets); :func:`visible_to_customer`
which events a customer sees. The live stream filters with the same three.
"""

# No `from __future__ import annotations`: FastAPI reads the dependency's annotations at run time,
# and they name the security schemes local to dependency().

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from services.tickets.config import Settings
from services.tickets.problems import Problem

ALGORITHM = "HS256"
STAFF_ROLES = ("agent", "lead")
ROLES = (*STAFF_ROLES, "customer")
API_KEY_HEADER = "X-API-Key"
CHALLENGE = 'Bearer realm="helpdesk"'

CallerKind = Literal["agent", "customer", "integration"]


@dataclass(frozen=True)
class Caller:
    """Who is calling: an agent (a lead is an agent with the ``lead`` role), a customer, or an integration.

    ``id`` is what the log records as the actor: the agent id, the customer id,
    or ``integration:<name>``.
    """

    id: str
    roles: tuple[str, ...]
    customer_id: str | None = None
    kind: CallerKind = "agent"

    @property
    def lead(self) -> bool:
        return self.kind == "agent" and "lead" in self.roles


# What each kind of caller may do (leads may everything agents may; what only leads may decide is a
# ticket rule, answered 409 naming it). Customers see only their own tickets: checked by may_see.
ACTIONS: dict[str, frozenset[CallerKind]] = {
    "read": frozenset({"agent", "customer", "integration"}),  # a ticket, the list, the live stream
    "reply": frozenset({"agent", "customer", "integration"}),  # a note; a customer's is a public reply
    "read_internal": frozenset({"agent", "integration"}),  # queues, SLA deadlines
    "work": frozenset(
        {"agent", "integration"}
    ),  # release, status, priority, queue, resolve, close, reopen, merge, link
    "claim": frozenset({"agent"}),  # claim and take-next: only a person owns a ticket
}

# Customers never see the desk's inner workings: assignments, priorities and their reasons, queues,
# escalations, flags, links to other (maybe other customers') tickets, internal notes.
CUSTOMER_EVENTS = frozenset(
    {
        "ticket.opened",
        "ticket.customer_replied",
        "ticket.status_changed",
        "ticket.resolved",
        "ticket.closed",
        "ticket.reopened",
        "ticket.merged",
    }
)


class InvalidCredential(Exception):
    """The token is missing, malformed, expired, or not for us; the text says which."""


class NotAllowed(Exception):
    """The token is valid but carries no role that may use the ticket API."""


def verify(token: str, settings: Settings) -> Caller:
    """The caller a JWT names; raises :class:`InvalidCredential` or :class:`NotAllowed`."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            options={"require": ["exp", "sub", "iss", "aud"]},
            leeway=30,  # clocks of agent machines drift a little
        )
    except jwt.PyJWTError as exc:
        raise InvalidCredential(str(exc) or type(exc).__name__) from None
    subject, roles = claims["sub"], claims.get("roles", [])
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidCredential("the token's subject (who it is for) is empty")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidCredential("the token's roles must be a list of strings")
    if "customer" in roles:
        if set(roles) & set(STAFF_ROLES):
            raise InvalidCredential("a token is a customer's or an agent's, not both")
        return Caller(id=subject, roles=tuple(roles), customer_id=subject, kind="customer")
    if not set(roles) & set(STAFF_ROLES):
        raise NotAllowed(f"the token has none of the roles {', '.join(ROLES)}")
    return Caller(id=subject, roles=tuple(roles))


def integration(key: str, keys: Mapping[str, str]) -> Caller | None:
    """The integration whose key this is (``keys``: name → sha256 hex), or None."""
    given = hashlib.sha256(key.encode()).hexdigest()
    found = None
    for name, digest in keys.items():
        if hmac.compare_digest(given, digest):  # no early exit: every key is compared
            found = name
    return Caller(id=f"integration:{found}", roles=("integration",), kind="integration") if found else None


def authenticate(bearer: str | None, api_key: str | None, settings: Settings) -> Caller:
    """The caller a request's credentials name: ``Authorization: Bearer <JWT>`` or ``X-API-Key``.

    Raises a 401 :class:`Problem` (with ``WWW-Authenticate``) for none or bad
    ones, 403 for a valid token with no role here.
    """
    if api_key is not None:
        caller = integration(api_key, settings.integration_keys)
        if caller is None:
            raise _unauthenticated("invalid-api-key", "Invalid API key", "the API key is not known")
        return caller
    if bearer is None:
        raise _unauthenticated(
            "unauthenticated",
            "Authentication required",
            "send a token as 'Authorization: Bearer <token>' (an integration: its key as 'X-API-Key: <key>')",
        )
    try:
        return verify(bearer, settings)
    except InvalidCredential as exc:
        reason = str(exc).replace('"', "'")
        raise Problem(
            401,
            "invalid-token",
            "Invalid token",
            f"the token was refused: {reason}",
            headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token", error_description="{reason}"'},
        ) from None
    except NotAllowed as exc:
        raise Problem(403, "forbidden", "Not allowed", str(exc)) from None


def dependency(settings: Settings) -> Callable[..., Any]:
    """A FastAPI dependency giving the request's :class:`Caller` (the OpenAPI document shows both schemes)."""
    bearer = HTTPBearer(auto_error=False, description="An agent's, lead's or customer's JWT (HS256).")
    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="An integration's API key.")

    async def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        api_key: Annotated[str | None, Depends(key_header)],
    ) -> Caller:
        return authenticate(credentials.credentials if credentials else None, api_key, settings)

    return caller


def allow(caller: Caller, action: str) -> None:
    """Raise 403 unless callers of this kind may take ``action`` (one of :data:`ACTIONS`)."""
    if caller.kind not in ACTIONS[action]:
        what = "an integration" if caller.kind == "integration" else f"a {caller.kind}"
        raise Problem(403, "forbidden", "Not allowed", f"{what} may not {action.replace('_', ' ')} here")


def may_see(caller: Caller, ticket_customer_id: str | None) -> bool:
    """Whether the ticket (of the customer ``ticket_customer_id``) exists for this caller."""
    if caller.kind != "customer":
        return True
    return ticket_customer_id is not None and ticket_customer_id == caller.customer_id


def visible_to_customer(event_type: str, data: Mapping[str, Any] | Any) -> bool:
    """Whether a customer sees this ticket event (``data``: the event's data, as a model or a dict)."""
    if event_type == "ticket.note_added":
        visibility = data.get("visibility") if isinstance(data, Mapping) else getattr(data, "visibility", None)
        return visibility == "public"
    return event_type in CUSTOMER_EVENTS


def mint(settings: Settings, subject: str, roles: Sequence[str] = ("agent",), ttl_s: int = 3600) -> str:
    """A token for ``subject`` (an agent id, or with role ``customer`` a customer's directory id)."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "roles": list(roles),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + ttl_s,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


def _unauthenticated(slug: str, title: str, detail: str) -> Problem:
    return Problem(401, slug, title, detail, headers={"WWW-Authenticate": CHALLENGE})
