"""Credentials: agents', leads' and customers' tokens, integrations' keys, and what each caller may see."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import jwt
import pytest

from runtime.settings import ConfigError, load
from services.tickets.auth import (
    Caller,
    InvalidCredential,
    NotAllowed,
    allow,
    authenticate,
    may_see,
    mint,
    verify,
    visible_to_customer,
)
from services.tickets.config import Settings
from services.tickets.mint_token import main as mint_token_main
from services.tickets.problems import Problem

KEY = "crm-key-0123456789"
SETTINGS = Settings(
    jwt_secret="s" * 40,
    jwt_issuer="helpdesk",
    jwt_audience="helpdesk-api",
    api_keys=json.dumps({"crm": hashlib.sha256(KEY.encode()).hexdigest()}),
)


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
    caller = verify(mint(SETTINGS, "alice", ["agent", "lead"]), SETTINGS)
    assert caller == Caller("alice", ("agent", "lead"), None, "agent") and caller.lead


def test_a_customers_token_names_the_customer_and_is_no_lead() -> None:
    caller = verify(mint(SETTINGS, "c-42", ["customer"]), SETTINGS)
    assert (caller.kind, caller.customer_id, caller.id, caller.lead) == ("customer", "c-42", "c-42", False)


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
        (signed(claims(roles=["customer", "lead"])), "not both"),
        (signed(claims(roles="agent")), "list of strings"),
    ],
)
def test_a_bad_token_is_refused_saying_why(token: str, why: str) -> None:
    with pytest.raises(InvalidCredential, match=why):
        verify(token, SETTINGS)


def test_a_token_without_a_known_role_is_not_allowed() -> None:
    with pytest.raises(NotAllowed):
        verify(signed(claims(roles=["visitor"])), SETTINGS)


def test_an_integration_is_known_by_its_key_and_acts_under_its_name() -> None:
    caller = authenticate(None, KEY, SETTINGS)
    assert (caller.id, caller.kind, caller.lead) == ("integration:crm", "integration", False)


@pytest.mark.parametrize(
    "bearer, api_key, status, slug",
    [
        (None, None, 401, "unauthenticated"),
        ("garbage", None, 401, "invalid-token"),
        (None, "not-a-key", 401, "invalid-api-key"),
        (signed(claims(roles=["visitor"])), None, 403, "forbidden"),
    ],
)
def test_missing_or_bad_credentials_are_401_with_a_challenge(
    bearer: str | None, api_key: str | None, status: int, slug: str
) -> None:
    with pytest.raises(Problem) as refused:
        authenticate(bearer, api_key, SETTINGS)
    assert (refused.value.status, refused.value.slug) == (status, slug)
    if status == 401:
        assert refused.value.headers["WWW-Authenticate"].startswith('Bearer realm="helpdesk"')


@pytest.mark.parametrize(
    "kind, action, allowed",
    [
        ("agent", "claim", True),
        ("integration", "claim", False),
        ("customer", "claim", False),
        ("integration", "work", True),
        ("customer", "work", False),
        ("customer", "read", True),
        ("customer", "reply", True),
        ("customer", "read_internal", False),
        ("integration", "read_internal", True),
    ],
)
def test_each_kind_of_caller_may_take_its_actions_only(kind: str, action: str, allowed: bool) -> None:
    caller = Caller("x", (kind,), "c-1" if kind == "customer" else None, kind)  # type: ignore[arg-type]
    if allowed:
        allow(caller, action)
    else:
        with pytest.raises(Problem) as refused:
            allow(caller, action)
        assert refused.value.status == 403


def test_a_customer_sees_only_their_own_tickets_and_staff_see_all() -> None:
    customer = Caller("c-1", ("customer",), "c-1", "customer")
    assert may_see(customer, "c-1") and not may_see(customer, "c-2") and not may_see(customer, None)
    assert may_see(Caller("alice", ("agent",)), "c-2")
    assert may_see(Caller("integration:crm", ("integration",), None, "integration"), None)


@pytest.mark.parametrize(
    "event_type, data, visible",
    [
        ("ticket.opened", {}, True),
        ("ticket.note_added", {"visibility": "public"}, True),
        ("ticket.note_added", {"visibility": "internal"}, False),
        ("ticket.customer_replied", {}, True),
        ("ticket.resolved", {}, True),
        ("ticket.merged", {}, True),
        ("ticket.assigned", {}, False),
        ("ticket.prioritised", {}, False),
        ("ticket.escalated", {}, False),
        ("ticket.flagged", {}, False),
        ("ticket.linked", {}, False),
        ("ticket.something_new", {}, False),
    ],
)
def test_a_customer_never_sees_the_desks_internal_events(event_type: str, data: dict[str, str], visible: bool) -> None:
    assert visible_to_customer(event_type, data) is visible


def test_the_mint_command_prints_a_token_the_service_accepts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETS_JWT_SECRET", "s" * 40)
    assert mint_token_main(["--agent", "bob", "--role", "lead", "--ttl", "60"]) == 0
    token = capsys.readouterr().out.strip()
    assert verify(token, SETTINGS) == Caller("bob", ("lead",))
    assert jwt.decode(token, options={"verify_signature": False})["exp"] <= time.time() + 61
    assert mint_token_main(["--customer", "c-42"]) == 0
    assert verify(capsys.readouterr().out.strip(), SETTINGS).customer_id == "c-42"


def test_the_mint_command_makes_an_api_key_and_the_digest_to_configure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert mint_token_main(["--api-key", "mail-gateway"]) == 0
    printed = capsys.readouterr()
    key = printed.out.strip()
    configured = printed.err.split("TICKETS_API_KEYS='")[1].split("'")[0]
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(configured)
    monkeypatch.setenv("TICKETS_API_KEYS_FILE", str(keys_file))
    assert authenticate(None, key, load(Settings)).id == "integration:mail-gateway"


@pytest.mark.parametrize(
    "variable, value, says",
    [
        ("TICKETS_API_KEYS", '{"crm": "the-key-itself"}', "sha256"),
        ("TICKETS_API_KEYS", "crm=abc", "not JSON"),
        ("TICKETS_API_KEYS", '["crm"]', "JSON object"),
        ("TICKETS_API_KEYS_FILE", "/no/such/file.json", "TICKETS_API_KEYS_FILE"),
    ],
)
def test_badly_configured_api_keys_are_a_configuration_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as error:
        load(Settings)
    assert variable in error.value.message and says in error.value.message


def test_a_short_secret_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETS_JWT_SECRET", "short")
    assert mint_token_main(["--agent", "bob"]) == 2
