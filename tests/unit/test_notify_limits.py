"""Rate limits and the recipients file, in plain Python."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.notify.adapters.providers import signature
from services.notify.config import SHIPPED_RECIPIENTS
from services.notify.limits import LimitSettings, RateLimits
from services.notify.recipients import RecipientsFileError, load_recipients

LIMITS = LimitSettings(per_recipient_per_s=1.0, per_recipient_burst=3, overall_per_s=100, overall_burst=100,
                       phone_per_s=0.5, phone_burst=5)


def test_a_runaway_loop_to_one_recipient_is_held_back_after_the_burst_and_others_still_get_through() -> None:
    limits = RateLimits(LIMITS)
    verdicts = [limits.hold_back("sms", "+441610000002", now=10.0) for _ in range(10_000)]
    assert verdicts[:3] == [None, None, None]
    assert set(verdicts[3:]) == {"recipient"}
    assert limits.hold_back("sms", "+441610000003", now=10.0) is None
    assert limits.hold_back("sms", "+441610000002", now=11.0) is None  # one token back after a second


def test_sms_overall_are_capped_even_when_each_recipient_is_within_its_own_limit() -> None:
    limits = RateLimits(LIMITS)
    verdicts = [limits.hold_back("sms", f"+4416100{n:05d}", now=0.0) for n in range(20)]
    assert verdicts.count(None) == 5 and verdicts[5:] == ["overall"] * 15
    assert limits.hold_back("email", "ada@example.com", now=0.0) is None  # e-mail has its own overall bucket


def test_the_shipped_recipients_file_is_valid_and_notifies_nobody_by_itself() -> None:
    recipients = load_recipients(SHIPPED_RECIPIENTS)
    assert recipients.routes("level", "2") == () and recipients.webhooks == ()


def test_the_recipients_file_gives_routes_by_level_number_and_name_and_by_agent(tmp_path: Path) -> None:
    path = tmp_path / "recipients.yaml"
    path.write_text(
        "levels:\n"
        "  - level: 2\n    name: L2\n    notify:\n      - {method: sms, to: '+441610000002'}\n      - {method: flag}\n"
        "agents:\n  - id: alice\n    notify:\n      - {method: pager, to: RKEY}\n"
        "webhooks:\n  - {name: crm, url: 'https://crm.example/h', secret_env: CRM_SECRET, events: [ticket.opened]}\n"
    )
    recipients = load_recipients(path, {"CRM_SECRET": "s3cret"})
    assert [r.method for r in recipients.routes("level", "L2")] == ["sms", "flag"]
    assert recipients.routes("level", "2") == recipients.routes("level", "L2")
    assert recipients.address("level", "L2", "sms") == "+441610000002"
    assert recipients.address("agent", "alice", "pager") == "RKEY"
    assert recipients.address("agent", "bob", "pager") is None
    assert recipients.secrets == {"crm": b"s3cret"}


@pytest.mark.parametrize(("text", "problem"), [
    ("levels:\n  - level: 2\n    notify:\n      - {method: sms, to: '0161 496 0742'}\n", ":4: levels[0].notify[0]"),
    ("agents:\n  - id: a\n    notify:\n      - {method: carrier_pigeon}\n", ":4: agents[0].notify[0].method"),
    ("webhooks:\n  - {name: crm, url: 'https://x/h', secret_env: UNSET_SECRET, events: [ticket.opened]}\n",
     "UNSET_SECRET is not set"),
])
def test_a_mistake_in_the_recipients_file_names_the_line_and_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "recipients.yaml"
    path.write_text(text)
    with pytest.raises(RecipientsFileError) as caught:
        load_recipients(path, {})
    assert problem in caught.value.message


PLAIN_HTTP = (
    "webhooks:\n"
    "  - name: crm\n"
    "    url: http://crm.example/hooks/helpdesk\n"
    "    secret_env: CRM_SECRET\n"
    "    events: [ticket.opened]\n"
)


def test_a_plain_http_webhook_is_refused_at_start_up_naming_file_line_and_problem(tmp_path: Path) -> None:
    path = tmp_path / "recipients.yaml"
    path.write_text(PLAIN_HTTP)
    with pytest.raises(RecipientsFileError) as caught:
        load_recipients(path, {"CRM_SECRET": "s3cret"})
    assert caught.value.message == (
        f"{path}:3: webhooks[0].url: webhook crm: http://crm.example/hooks/helpdesk is plain http; use https, "
        "or set 'allow_http: true' on this webhook for a receiver inside the cluster"
    )


def test_a_webhook_may_be_plain_http_where_the_recipients_file_allows_it(tmp_path: Path) -> None:
    path = tmp_path / "recipients.yaml"
    path.write_text(PLAIN_HTTP + "    allow_http: true\n")
    [hook] = load_recipients(path, {"CRM_SECRET": "s3cret"}).webhooks
    assert (hook.url, hook.allow_http) == ("http://crm.example/hooks/helpdesk", True)


def test_the_webhook_signature_is_hmac_sha256_of_the_timestamp_and_body() -> None:
    # Known answer from openssl: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
    assert signature(b"key", 1700000000, b'{"a":1}') == (
        "t=1700000000,v1=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
    )
