"""Who is calling, checked the same way by every service that serves people: tokens and API keys.

People (agents, team leads, customers) send ``Authorization: Bearer <JWT>``. A token is checked
against the identity provider's published keys (``AUTH_JWKS_URL`` or ``AUTH_JWKS_FILE``: RS256,
PS256, ES256 or EdDSA), so no service holds anything that could mint a token; or, on one machine,
against a shared HS256 secret (``AUTH_JWT_SECRET``). With neither, a service refuses to start,
unless ``HELPDESK_DEVELOPMENT=true`` says this is a developer's machine: then a built-in secret
that anyone can read signs and checks tokens, and every start-up says so loudly.

A token must name its issuer, audience, subject, expiry and time of issue, and may live at most
``AUTH_MAX_TOKEN_LIFETIME_S`` (12 hours by default): a stolen token is worth a working day, not a
decade. Its ``roles`` say what the caller is: ``agent`` and/or ``lead`` for the desk's people,
``customer`` for a customer (``sub`` is then the customer's directory id).

Integrations send ``X-API-Key``; a service is configured with the keys' sha256 digests only, and
compares a presented key against every digest in constant time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import jwt
from pydantic import Field, FilePath, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.logs import get_logger
from runtime.problems import Problem
from runtime.settings import ConfigError

log = get_logger("runtime.auth")

STAFF_ROLES = ("agent", "lead")
ROLES = (*STAFF_ROLES, "customer")
SECRET_ALGORITHM = "HS256"
# Asymmetric algorithms only from a key set: a token naming HS256 could otherwise be "signed" with a public key.
KEY_SET_ALGORITHMS = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA",),
}
LEEWAY_S = 30  # clocks of agents' machines and of the identity provider drift a little
# Development only: public in this source, so anyone could mint a token with it.
DEVELOPMENT_SECRET = "helpdesk-development-secret-never-use-in-a-deployment"

CallerKind = Literal["agent", "customer", "integration"]


class AuthSettings(BaseSettings):
    """How people's tokens are checked (environment variables prefixed ``AUTH_``, the same for every service)."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    jwks_url: str | None = Field(
        default=None,
        description="The identity provider's JSON Web Key Set (https://…/jwks.json; http only to a loopback address).",
    )
    jwks_file: FilePath | None = Field(
        default=None, description="A JSON Web Key Set in a file (e.g. a mounted Secret)."
    )
    jwt_secret: SecretStr | None = Field(
        default=None, min_length=32, description="Shared HS256 secret, for a single machine (32+ random characters)."
    )
    jwt_issuer: str = Field(default="helpdesk", min_length=1, description="The `iss` every token must carry.")
    jwt_audience: str = Field(default="helpdesk-api", min_length=1, description="The `aud` every token must carry.")
    max_token_lifetime_s: int = Field(
        default=12 * 3600, ge=60, le=31 * 24 * 3600, description="Longest a token may live (its exp minus its iat)."
    )
    jwks_refresh_s: float = Field(
        default=600.0, ge=10, description="How often the key set is fetched again (also on an unknown key id)."
    )

    @field_validator("jwks_url")
    @classmethod
    def _https_unless_loopback(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parsed = httpx.URL(url)
        if parsed.scheme == "https" or (parsed.scheme == "http" and _loopback(parsed.host)):
            return url
        raise ValueError("the key set must be fetched over https (http only from 127.0.0.1, ::1 or localhost)")


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


@dataclass(frozen=True)
class Caller:
    """Who is calling: an agent (a lead is an agent with the ``lead`` role), a customer, or an integration.

    ``id`` is what the log records as the actor: the agent id, the customer id, or
    ``integration:<name>``. ``expires_at`` (epoch seconds) is when the token ends; a live
    stream ends then too. API keys do not expire.
    """

    id: str
    roles: tuple[str, ...]
    customer_id: str | None = None
    kind: CallerKind = "agent"
    expires_at: float | None = None

    @property
    def lead(self) -> bool:
        return self.kind == "agent" and "lead" in self.roles


class InvalidCredential(Exception):
    """The token is missing, malformed, expired, too long-lived or not for us; the text says which."""


class NotAllowed(Exception):
    """The token is valid but carries no role this desk knows."""


class TokenVerifier:
    """Checks people's tokens by the configured key set or secret."""

    def __init__(self, settings: AuthSettings, *, development: bool = False) -> None:
        if settings.jwt_secret is not None and (settings.jwks_url or settings.jwks_file):
            raise ConfigError("configure either AUTH_JWKS_URL / AUTH_JWKS_FILE or AUTH_JWT_SECRET, not both")
        if settings.jwks_url and settings.jwks_file:
            raise ConfigError("configure either AUTH_JWKS_URL or AUTH_JWKS_FILE, not both")
        self.settings = settings
        self.keys = KeySet(settings) if settings.jwks_url or settings.jwks_file else None
        secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        if self.keys is None and secret is None:
            if not development:
                raise ConfigError(
                    "no way to check people's tokens: set AUTH_JWKS_URL (or AUTH_JWKS_FILE) to the identity "
                    "provider's key set, or AUTH_JWT_SECRET (32+ random characters) on a single machine; "
                    "HELPDESK_DEVELOPMENT=true accepts a built-in secret on a developer's machine"
                )
            secret = DEVELOPMENT_SECRET
        self.secret = secret
        self.uses_development_secret = secret == DEVELOPMENT_SECRET

    async def start(self) -> None:
        if self.uses_development_secret:
            log.warning(
                "INSECURE: people's tokens are checked with the built-in development secret, which anyone can "
                "read in the source (HELPDESK_DEVELOPMENT=true); a deployment sets AUTH_JWKS_URL"
            )
        if self.keys is not None:
            await self.keys.refresh(force=True)

    async def ready(self) -> bool:
        return self.keys is None or self.keys.loaded

    async def verify(self, token: str) -> Caller:
        """The caller a token names; raises :class:`InvalidCredential` or :class:`NotAllowed`."""
        try:
            if self.keys is not None:
                key, algorithms = await self.keys.key_for(token)
            else:
                key, algorithms = self.secret, [SECRET_ALGORITHM]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self.settings.jwt_issuer,
                audience=self.settings.jwt_audience,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                leeway=LEEWAY_S,
            )
        except jwt.PyJWTError as exc:
            raise InvalidCredential(str(exc) or type(exc).__name__) from None
        return caller_of(claims, self.settings.max_token_lifetime_s)

    def mint(self, subject: str, roles: Sequence[str] = ("agent",), ttl_s: int = 3600) -> str:
        """A token signed with the shared secret (local use and tests; a deployment's provider mints its own)."""
        if self.secret is None:
            raise ConfigError("tokens are checked by a key set (AUTH_JWKS_*): mint them with the identity provider")
        now = int(time.time())
        claims = {
            "sub": subject,
            "roles": list(roles),
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "iat": now,
            "exp": now + ttl_s,
        }
        return jwt.encode(claims, self.secret, algorithm=SECRET_ALGORITHM)


def caller_of(claims: Mapping[str, Any], max_lifetime_s: int) -> Caller:
    """The caller verified claims name, or :class:`InvalidCredential` / :class:`NotAllowed`."""
    subject, roles = claims["sub"], claims.get("roles", [])
    issued, expires = claims["iat"], claims["exp"]
    if not isinstance(issued, int | float) or not isinstance(expires, int | float):
        raise InvalidCredential("the token's iat and exp must be numbers (seconds since 1970)")
    if expires - issued > max_lifetime_s:
        raise InvalidCredential(
            f"the token lives {int(expires - issued)}s, longer than the {max_lifetime_s}s allowed (AUTH_MAX_TOKEN_LIFETIME_S)"
        )
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidCredential("the token's subject (who it is for) is empty")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidCredential("the token's roles must be a list of strings")
    if "customer" in roles:
        if set(roles) & set(STAFF_ROLES):
            raise InvalidCredential("a token is a customer's or an agent's, not both")
        return Caller(subject, tuple(roles), customer_id=subject, kind="customer", expires_at=float(expires))
    if not set(roles) & set(STAFF_ROLES):
        raise NotAllowed(f"the token has none of the roles {', '.join(ROLES)}")
    return Caller(subject, tuple(roles), expires_at=float(expires))


class KeySet:
    """The identity provider's public keys, fetched (or read) again when stale or when a token names a new key."""

    MIN_REFETCH_S = 30.0  # a flood of tokens naming unknown keys must not become a flood of fetches

    def __init__(self, settings: AuthSettings) -> None:
        self._url = settings.jwks_url
        self._file: Path | None = settings.jwks_file
        self._max_age_s = settings.jwks_refresh_s
        self._keys: dict[str | None, _PublicKey] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return bool(self._keys)

    async def key_for(self, token: str) -> tuple[Any, list[str]]:
        """The key that signed ``token`` and the one algorithm it may be checked with."""
        header = jwt.get_unverified_header(token)
        kid, algorithm = header.get("kid"), header.get("alg")
        if time.monotonic() - self._fetched_at > self._max_age_s or kid not in self._keys:
            await self.refresh()
        key = self._keys.get(kid) or (next(iter(self._keys.values())) if kid is None and len(self._keys) == 1 else None)
        if key is None:
            raise jwt.InvalidKeyError(f"no key {kid!r} in the identity provider's key set")
        if algorithm not in KEY_SET_ALGORITHMS.get(key.kind, ()) or key.algorithm not in (None, algorithm):
            raise jwt.InvalidAlgorithmError(f"algorithm {algorithm!r} is not accepted for key {kid!r}")
        return key.key, [algorithm]

    async def refresh(self, *, force: bool = False) -> None:
        async with self._lock:
            if not force and time.monotonic() - self._fetched_at < self.MIN_REFETCH_S:
                return
            self._fetched_at = time.monotonic()
            try:
                keys = _signing_keys(await self._document())
            except (httpx.HTTPError, OSError, ValueError, jwt.PyJWTError) as exc:
                # Keep the keys we have: the provider being down for a while must not sign everyone out.
                log.warning(
                    "identity provider's key set not loaded", source=self._url or str(self._file), error=str(exc)
                )
                return
            if keys != self._keys:
                log.info("identity provider's key set loaded", keys=sorted(str(k) for k in keys))
            self._keys = keys

    async def _document(self) -> dict[str, Any]:
        if self._file is not None:
            return json.loads(await asyncio.to_thread(self._file.read_text, encoding="utf-8"))
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(self._url or "")
            response.raise_for_status()
            return response.json()


@dataclass(frozen=True)
class _PublicKey:
    key: Any
    kind: str  # the JWK's kty: RSA, EC, OKP
    algorithm: str | None  # the JWK's alg, when it names one


def _signing_keys(document: Any) -> dict[str | None, _PublicKey]:
    """The usable signature keys of a JWK Set (keys for encryption, symmetric or unknown ones are passed over)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JSON Web Key Set (an object with a 'keys' list)")  # noqa: TRY004
    keys = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or jwk.get("kty") not in KEY_SET_ALGORITHMS:
            continue
        try:
            keys[jwk.get("kid")] = _PublicKey(jwt.PyJWK(jwk).key, jwk["kty"], jwk.get("alg"))
        except jwt.PyJWTError as exc:
            log.warning("a key of the key set is not usable", kid=jwk.get("kid"), error=str(exc))
    if not keys:
        raise ValueError("the key set holds no usable signature key (RSA, EC or OKP)")
    return keys


# --- integrations' API keys -----------------------------------------------------------------------------

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def parse_api_keys(text: str) -> dict[str, str]:
    """``{"<integration name>": "<sha256 hex>"}``; raises ValueError saying what is wrong.

    Only digests are configured: a leaked configuration gives no key away.
    """
    try:
        keys = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(keys, dict):
        raise ValueError('expected a JSON object {"<integration name>": "<sha256 hex of its key>"}')  # noqa: TRY004  (pydantic reports ValueError only)
    for name, digest in keys.items():
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name):
            raise ValueError(f"integration name {name!r}: use 1-100 letters, digits, '.', '_' or '-'")
        if not isinstance(digest, str) or not _SHA256_HEX.match(digest.lower()):
            raise ValueError(f"{name!r}: expected the 64 hex digits of the key's sha256, not the key itself")
    return {name: digest.lower() for name, digest in keys.items()}


def integration(key: str, keys: Mapping[str, str]) -> Caller | None:
    """The integration whose key this is (``keys``: name → sha256 hex), or None."""
    given = hashlib.sha256(key.encode()).hexdigest()
    found = None
    for name, digest in keys.items():
        if hmac.compare_digest(given, digest):  # no early exit: every key is compared
            found = name
    return Caller(id=f"integration:{found}", roles=("integration",), kind="integration") if found else None


# --- a request's credentials ----------------------------------------------------------------------------

CHALLENGE = 'Bearer realm="helpdesk"'


class Authenticator:
    """Turns a request's credentials into a :class:`Caller`, or a 401/403 problem."""

    def __init__(self, verifier: TokenVerifier, api_keys: Mapping[str, str] | None = None) -> None:
        self.verifier = verifier
        self.api_keys = dict(api_keys or {})

    async def __call__(self, authorization: str | None, api_key: str | None) -> Caller:
        if api_key is not None:
            caller = integration(api_key, self.api_keys) if self.api_keys else None
            if caller is None:
                raise _unauthenticated("invalid-api-key", "Invalid API key", "the API key is not known")
            return caller
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            keys = " (an integration: its key as 'X-API-Key: <key>')" if self.api_keys else ""
            raise _unauthenticated(
                "unauthenticated", "Authentication required", f"send a token as 'Authorization: Bearer <token>'{keys}"
            )
        try:
            return await self.verifier.verify(token.strip())
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


def _unauthenticated(slug: str, title: str, detail: str) -> Problem:
    return Problem(401, slug, title, detail, headers={"WWW-Authenticate": CHALLENGE})


def require(caller: Caller, *, kinds: Sequence[CallerKind], lead: bool = False, doing: str) -> None:
    """Raise 403 unless the caller is one of ``kinds`` (and a lead, when ``lead``)."""
    if caller.kind not in kinds:
        what = "an integration" if caller.kind == "integration" else f"a {caller.kind}"
        raise Problem(403, "forbidden", "Not allowed", f"{what} may not {doing}")
    if lead and not caller.lead:
        raise Problem(403, "forbidden", "Not allowed", f"only a team lead may {doing}")
