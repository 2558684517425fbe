"""Agents' tokens: what the ticket API accepts and refuses."""

from __future__ import annotations

import time

import jwt
import pytest

from services.tickets.auth import Agent, InvalidCredential, NotAllowed, mint, verify
from services.tickets.config import Settings
from services.tickets.mint_token import main as mint_token_main

SETTINGS = Settings(jwt_secret="s" * 40, jwt_issuer="helpdesk", jwt_audience="helpdesk-api")


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


def signed(payload: dict[str, object], key: str = "s" * 40, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def test_a_minted_token_names_the_agent_and_roles() -> None:
    assert verify(mint(SETTINGS, "alice", ["agent", "lead"]), SETTINGS) == Agent("alice", ("agent", "lead"))


@pytest.mark.parametrize(
    "token, why",
    [
        (signed(claims(), key="x" * 40), "Signature verification failed"),
        (signed(claims(exp=int(time.time()) - 3600)), "expired"),
        (signed(claims(exp=None)), "exp"),
        (signed(claims(iss="someone-else")), "issuer"),
        (signed(claims(aud="other-api")), "(?i)audience"),
        (signed(claims(), key="s" * 64, algorithm="HS512"), "alg value is not allowed"),
        (jwt.encode(claims(), key=None, algorithm="none"), "alg value is not allowed"),
        ("not-a-jwt", "Not enough segments"),
    ],
)
def test_a_bad_token_is_refused_saying_why(token: str, why: str) -> None:
    with pytest.raises(InvalidCredential, match=why):
        verify(token, SETTINGS)


def test_a_token_without_an_agent_role_is_not_allowed() -> None:
    with pytest.raises(NotAllowed):
        verify(signed(claims(roles=["customer"])), SETTINGS)


def test_the_mint_command_prints_a_token_the_service_accepts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETS_JWT_SECRET", "s" * 40)
    assert mint_token_main(["--agent", "bob", "--role", "lead", "--ttl", "60"]) == 0
    token = capsys.readouterr().out.strip()
    agent = verify(token, SETTINGS)
    assert agent == Agent("bob", ("lead",))
    assert jwt.decode(token, options={"verify_signature": False})["exp"] <= time.time() + 61


def test_a_short_secret_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETS_JWT_SECRET", "short")
    assert mint_token_main(["--agent", "bob"]) == 2
