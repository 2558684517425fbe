"""People's tokens and integrations' keys, as every service checks them (runtime.auth)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from runtime.auth import (
    DEVELOPMENT_SECRET,
    Authenticator,
    AuthSettings,
    Caller,
    InvalidCredential,
    NotAllowed,
    TokenVerifier,
    parse_api_keys,
)
from runtime.problems import Problem
from runtime.settings import ConfigError, load
from services.tickets.mint_token import main as mint_token_main

SECRET = "s" * 40
SETTINGS = AuthSettings(jwt_secret=SECRET)
VERIFIER = TokenVerifier(SETTINGS)
KEY = "crm-key-0123456789"


def claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "alice",
        "roles": ["agent"],
        "iss": "helpdesk",
        "aud": "helpdesk-api",
        "iat": now,
        "exp": now + 600,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(payload: dict[str, object], key: object = SECRET, algorithm: str = "HS256", kid: str | None = None) -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid} if kid else None)  # type: ignore[arg-type]


async def test_a_minted_token_names_the_agent_roles_and_expiry() -> None:
    caller = await VERIFIER.verify(VERIFIER.mint("alice", ["agent", "lead"], ttl_s=600))
    assert (caller.id, caller.roles, caller.kind, caller.lead) == ("alice", ("agent", "lead"), "agent", True)
    assert caller.expires_at is not None and abs(caller.expires_at - (time.time() + 600)) < 5


async def test_a_customers_token_names_the_customer_and_is_no_lead() -> None:
    caller = await VERIFIER.verify(VERIFIER.mint("c-42", ["customer"]))
    assert (caller.kind, caller.customer_id, caller.id, caller.lead) == ("customer", "c-42", "c-42", False)


@pytest.mark.parametrize(
    "token, why",
    [
        (signed(claims(), key="x" * 40), "Signature verification failed"),
        (signed(claims(exp=int(time.time()) - 3600, iat=int(time.time()) - 4000)), "expired"),
        (signed(claims(exp=None)), "exp"),
        (signed(claims(iat=None)), "iat"),
        (signed(claims(iss="someone-else")), "issuer"),
        (signed(claims(aud="other-api")), "(?i)audience"),
        (signed(claims(), key="s" * 64, algorithm="HS512"), "alg value is not allowed"),
        (jwt.encode(claims(), key=None, algorithm="none"), "alg value is not allowed"),
        ("not-a-jwt", "Not enough segments"),
        (signed(claims(roles=["customer", "lead"])), "not both"),
        (signed(claims(roles="agent")), "list of strings"),
    ],
)
async def test_a_bad_token_is_refused_saying_why(token: str, why: str) -> None:
    with pytest.raises(InvalidCredential, match=why):
        await VERIFIER.verify(token)


async def test_a_token_living_longer_than_the_cap_is_refused_however_well_signed() -> None:
    now = int(time.time())
    ten_years = signed(claims(iat=now, exp=now + 10 * 365 * 24 * 3600, roles=["agent", "lead"]))
    with pytest.raises(InvalidCredential, match="longer than the 43200s allowed"):
        await VERIFIER.verify(ten_years)
    a_day = signed(claims(iat=now, exp=now + 24 * 3600))
    with pytest.raises(InvalidCredential, match="AUTH_MAX_TOKEN_LIFETIME_S"):
        await VERIFIER.verify(a_day)
    relaxed = TokenVerifier(AuthSettings(jwt_secret=SECRET, max_token_lifetime_s=2 * 24 * 3600))
    assert (await relaxed.verify(a_day)).id == "alice"


async def test_a_token_without_a_known_role_is_not_allowed() -> None:
    with pytest.raises(NotAllowed):
        await VERIFIER.verify(signed(claims(roles=["visitor"])))


def test_without_a_key_set_or_secret_a_service_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="AUTH_JWKS_URL") as refused:
        TokenVerifier(AuthSettings(), development=False)
    assert "HELPDESK_DEVELOPMENT" in refused.value.message


async def test_the_development_secret_is_accepted_only_in_development() -> None:
    development = TokenVerifier(AuthSettings(), development=True)
    assert development.uses_development_secret
    token = signed(claims(), key=DEVELOPMENT_SECRET)
    assert (await development.verify(token)).id == "alice"
    # A service given its own secret no longer accepts what anyone can sign with the public one.
    with pytest.raises(InvalidCredential):
        await TokenVerifier(SETTINGS, development=True).verify(token)


def test_a_short_secret_and_an_http_key_set_are_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", "short")
    with pytest.raises(ConfigError, match="AUTH_JWT_SECRET"):
        load(AuthSettings)
    monkeypatch.delenv("AUTH_JWT_SECRET")
    monkeypatch.setenv("AUTH_JWKS_URL", "http://idp.example.com/jwks.json")
    with pytest.raises(ConfigError, match="https"):
        load(AuthSettings)
    monkeypatch.setenv("AUTH_JWKS_URL", "http://127.0.0.1:9999/jwks.json")
    assert load(AuthSettings).jwks_url


def test_a_configuration_error_never_prints_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", "hunter2-too-short")
    with pytest.raises(ConfigError) as refused:
        load(AuthSettings)
    assert "AUTH_JWT_SECRET" in refused.value.message and "hunter2" not in refused.value.message


# --- key sets (asymmetric: nothing a service holds can mint a token) ---------------------------------


def key_set_file(tmp_path: Path, *public_keys: tuple[str, object]) -> Path:
    keys = []
    for kid, public in public_keys:
        algorithm = jwt.algorithms.RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else jwt.algorithms.ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(public))  # type: ignore[attr-defined]
        keys.append({**jwk, "kid": kid, "use": "sig"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    return path


async def test_tokens_signed_by_the_providers_keys_are_accepted_and_nothing_else(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    path = key_set_file(tmp_path, ("rsa-1", rsa_key.public_key()), ("ec-1", ec_key.public_key()))
    verifier = TokenVerifier(AuthSettings(jwks_file=path))
    await verifier.start()
    assert await verifier.ready()
    assert (await verifier.verify(signed(claims(), rsa_key, "RS256", "rsa-1"))).id == "alice"
    assert (await verifier.verify(signed(claims(sub="bob"), ec_key, "ES256", "ec-1"))).id == "bob"
    # A stranger's key, a key used in another key's name, an unknown key, and the classic confusion:
    # HS256 "signed" with the provider's public key as the secret. All refused.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for token in (
        signed(claims(), stranger, "RS256", "rsa-1"),
        signed(claims(), ec_key, "ES256", "rsa-1"),
        signed(claims(), stranger, "RS256", "unknown-kid"),
        hmac_signed_with(rsa_key.public_key(), "rsa-1"),
    ):
        with pytest.raises(InvalidCredential):
            await verifier.verify(token)
    with pytest.raises(ConfigError, match="not both"):
        TokenVerifier(AuthSettings(jwks_file=path, jwt_secret=SECRET))
    with pytest.raises(ConfigError, match="identity provider"):
        TokenVerifier(AuthSettings(jwks_file=path)).mint("alice")


def hmac_signed_with(public_key: rsa.RSAPublicKey, kid: str) -> str:
    """A token whose HS256 "secret" is the provider's public key (which everyone can fetch)."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    part = lambda value: base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")
    signing_input = part({"alg": "HS256", "typ": "JWT", "kid": kid}) + b"." + part(claims())
    signature = base64.urlsafe_b64encode(hmac.new(pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    return (signing_input + b"." + signature).decode()


async def test_a_new_key_of_the_provider_is_picked_up_when_a_token_names_it(tmp_path: Path) -> None:
    old, new = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    path = key_set_file(tmp_path, ("2026-1", old.public_key()))
    verifier = TokenVerifier(AuthSettings(jwks_file=path))
    await verifier.start()
    key_set_file(tmp_path, ("2026-1", old.public_key()), ("2026-2", new.public_key()))  # the provider rotates
    verifier.keys._fetched_at -= verifier.keys.MIN_REFETCH_S  # type: ignore[union-attr]  # the last look was a while ago
    assert (await verifier.verify(signed(claims(), new, "RS256", "2026-2"))).id == "alice"


# --- integrations' keys and a request's credentials ----------------------------------------------------


async def test_an_integration_is_known_by_its_key_and_acts_under_its_name() -> None:
    authenticate = Authenticator(VERIFIER, {"crm": hashlib.sha256(KEY.encode()).hexdigest()})
    caller = await authenticate(None, KEY)
    assert caller == Caller("integration:crm", ("integration",), None, "integration")


@pytest.mark.parametrize(
    "authorization, api_key, status, slug",
    [
        (None, None, 401, "unauthenticated"),
        ("Basic YWxpY2U6cHc=", None, 401, "unauthenticated"),
        ("Bearer garbage", None, 401, "invalid-token"),
        (None, "not-a-key", 401, "invalid-api-key"),
        ("Bearer " + signed(claims(roles=["visitor"])), None, 403, "forbidden"),
    ],
)
async def test_missing_or_bad_credentials_are_401_with_a_challenge(
    authorization: str | None, api_key: str | None, status: int, slug: str
) -> None:
    authenticate = Authenticator(VERIFIER, {"crm": hashlib.sha256(KEY.encode()).hexdigest()})
    with pytest.raises(Problem) as refused:
        await authenticate(authorization, api_key)
    assert (refused.value.status, refused.value.slug) == (status, slug)
    if status == 401:
        assert refused.value.headers["WWW-Authenticate"].startswith('Bearer realm="helpdesk"')


@pytest.mark.parametrize(
    "text, says",
    [('{"crm": "the-key-itself"}', "sha256"), ("crm=abc", "not JSON"), ('["crm"]', "JSON object")],
)
def test_api_keys_are_configured_as_digests_only(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_api_keys(text)


# --- the mint command (local use) ------------------------------------------------------------------------


async def test_the_mint_command_prints_a_token_the_services_accept(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    assert mint_token_main(["--agent", "bob", "--role", "lead", "--ttl", "60"]) == 0
    token = capsys.readouterr().out.strip()
    assert (await VERIFIER.verify(token)).roles == ("lead",)
    assert jwt.decode(token, options={"verify_signature": False})["exp"] <= time.time() + 61
    assert mint_token_main(["--customer", "c-42"]) == 0
    assert (await VERIFIER.verify(capsys.readouterr().out.strip())).customer_id == "c-42"


def test_the_mint_command_refuses_without_a_secret_outside_development(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTH_JWT_SECRET", raising=False)
    monkeypatch.setenv("HELPDESK_DEVELOPMENT", "false")
    assert mint_token_main(["--agent", "bob"]) == 2
    assert "AUTH_JWT_SECRET" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mint_token_main(["--agent", "bob", "--ttl", str(30 * 24 * 3600)])


def test_a_configuration_error_never_prints_a_password_in_a_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.tickets.config import Settings as TicketSettings

    monkeypatch.setenv("TICKETS_HTTP_PORT", "postgresql://desk:s3cr3t-pw@db/tickets")
    with pytest.raises(ConfigError) as refused:
        load(TicketSettings)
    assert "TICKETS_HTTP_PORT" in refused.value.message and "s3cr3t" not in refused.value.message
    assert "desk:***@db" in refused.value.message
