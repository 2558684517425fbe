"""Agents' credentials: HS256 JSON Web Tokens.

A token says who the agent is (``sub``) and what they may do (``roles``:
``agent`` and/or ``lead``). The algorithm is pinned to HS256, so a token that
names another algorithm (``none``, or an asymmetric one keyed with our secret)
is refused. Issuer, audience and expiry are required.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import jwt

from services.tickets.config import Settings

ALGORITHM = "HS256"
ROLES = ("agent", "lead")


@dataclass(frozen=True)
class Agent:
    id: str
    roles: tuple[str, ...]


class InvalidCredential(Exception):
    """The token is missing, malformed, expired, or not for us; the text says which."""


class NotAllowed(Exception):
    """The token is valid but carries no role that may use the ticket API."""


def verify(token: str, settings: Settings) -> Agent:
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
        raise InvalidCredential("the token's subject (the agent id) is empty")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidCredential("the token's roles must be a list of strings")
    if not set(roles) & set(ROLES):
        raise NotAllowed(f"the token has none of the roles {', '.join(ROLES)}")
    return Agent(id=subject, roles=tuple(roles))


def mint(settings: Settings, agent_id: str, roles: Sequence[str] = ("agent",), ttl_s: int = 3600) -> str:
    now = int(time.time())
    claims = {
        "sub": agent_id,
        "roles": list(roles),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + ttl_s,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)
