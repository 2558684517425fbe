"""People's tokens for tests: signed with a shared secret the services under test are given."""

from __future__ import annotations

from collections.abc import Sequence

from runtime.auth import AuthSettings, TokenVerifier

SECRET = "tests-shared-token-secret-0123456789abcdef"
AUTH = AuthSettings(jwt_secret=SECRET)
# For a service started as a process.
AUTH_ENV = {"AUTH_JWT_SECRET": SECRET}


def mint(subject: str, roles: Sequence[str] = ("agent",), ttl_s: int = 3600, *, auth: AuthSettings = AUTH) -> str:
    return TokenVerifier(auth).mint(subject, roles, ttl_s)


def bearer(subject: str, roles: Sequence[str] = ("agent",), ttl_s: int = 3600) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(subject, roles, ttl_s)}"}


# A service built without AUTH_* under HELPDESK_DEVELOPMENT=true (as the tests run) checks tokens with the
# development secret: these are the tokens it accepts.
DEVELOPMENT = AuthSettings()


def development_bearer(subject: str = "alice", roles: Sequence[str] = ("agent",)) -> dict[str, str]:
    return {"Authorization": f"Bearer {TokenVerifier(DEVELOPMENT, development=True).mint(subject, roles)}"}
