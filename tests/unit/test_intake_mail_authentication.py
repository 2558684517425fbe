"""Whether a mail's sender is who From: says: only the trusted relay's topmost Authentication-Results count."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from services.intake.channels.mail import Mail, read_mail
from services.intake.channels.mail_authentication import MailTrust, sender_verified, trusted_results

RELAY = "mx.helpdesk.example"
TRUST = MailTrust(frozenset({RELAY, "mx2.helpdesk.example"}))
NOW = datetime(2026, 3, 14, 9, 26, tzinfo=UTC)


def verified(*headers: str, domain: str = "example.com", trust: MailTrust = TRUST) -> bool:
    return sender_verified(headers, domain, trust)


@pytest.mark.parametrize(
    "header",
    [
        f"{RELAY}; dmarc=pass (p=reject dis=none) header.from=example.com",
        f"{RELAY} 1; spf=pass smtp.mailfrom=bounces@mail.example.com",
        f"{RELAY}; dkim=pass header.d=example.com header.s=s1; spf=fail smtp.mailfrom=other.example",
        f'{RELAY}; dkim=pass reason="good; signature" header.i=@example.com',
        f"{RELAY.upper()}; dmarc=pass header.from=example.com",
    ],
)
def test_a_trusted_relay_saying_dmarc_or_an_aligned_spf_or_dkim_passed_verifies_the_sender(header: str) -> None:
    assert verified(header)


@pytest.mark.parametrize(
    "header",
    [
        f"{RELAY}; dmarc=fail header.from=example.com",
        f"{RELAY}; dmarc=fail header.from=example.com; dkim=pass header.d=example.com",  # DMARC's verdict decides
        f"{RELAY}; spf=pass smtp.mailfrom=attacker.example",  # passed, but for another domain
        f"{RELAY}; dkim=pass header.d=com",  # a top-level domain aligns with nothing
        f"{RELAY}; dmarc=pass header.from=attacker.example",  # DMARC passed for another From:
        f"{RELAY}; none",
        "mx.attacker.example; dmarc=pass header.from=example.com",  # not our relay
        f"{RELAY}.attacker.example; dmarc=pass header.from=example.com",
    ],
)
def test_anything_else_leaves_the_sender_unverified(header: str) -> None:
    assert not verified(header)


def test_results_below_an_untrusted_header_or_below_the_relays_own_verdict_do_not_count() -> None:
    forged_below = f"{RELAY}; dmarc=pass header.from=example.com"
    assert not verified("mx.gmail.example; dmarc=pass", forged_below)
    assert not verified(f"{RELAY}; dmarc=fail header.from=example.com", forged_below)
    assert [r.method for r in trusted_results([f"{RELAY}; spf=pass", "x.example; dkim=pass", forged_below],
                                              TRUST.trusted_authserv_ids)] == ["spf"]  # fmt: skip


def test_a_site_without_authentication_results_may_trust_every_from() -> None:
    assert verified(domain="example.com", trust=MailTrust(required=False))
    assert not verified(domain="example.com", trust=MailTrust())  # and by default nothing is trusted


def mail(results: str | None, subject: str = "Re: [HD-12] invoice", **headers: str) -> Mail:
    message = EmailMessage()
    if results:
        message["Authentication-Results"] = results
    message["From"], message["Subject"], message["Message-ID"] = "Ada <ada@example.com>", subject, "<m1@example.com>"
    message["In-Reply-To"] = "<resolved.1.HD-12@helpdesk>"
    message.set_content("Please send it to my new address.")  # (it replaces Content-* headers: set them after)
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return Mail(message.as_bytes())


def test_an_unverified_mail_keeps_its_address_but_answers_no_ticket() -> None:
    data, thread = read_mail(mail(None), NOW, TRUST)
    assert (data.contact.email, data.contact_verified, data.reply_to_number, thread) == (
        "ada@example.com", False, None, []
    )  # fmt: skip
    data, thread = read_mail(mail(f"{RELAY}; dmarc=pass header.from=example.com"), NOW, TRUST)
    assert (data.contact_verified, data.reply_to_number, thread) == (True, "HD-12", ["<resolved.1.HD-12@helpdesk>"])


@pytest.mark.parametrize(
    ("headers", "language"),
    [
        ({"Accept_Language": "de-CH, de;q=0.9, en;q=0.5"}, "de-CH"),
        ({"Accept_Language": "en;q=0.2, fr;q=0.8"}, "fr"),
        ({"Accept_Language": "*, xx_YY"}, None),
        ({"Content_Language": "de"}, "de"),
        ({"Accept_Language": "nl", "Content_Language": "en"}, "nl"),
        ({}, None),
    ],
)
def test_the_customers_language_comes_from_accept_language_else_content_language(
    headers: dict[str, str], language: str | None
) -> None:
    assert read_mail(mail(None, **headers), NOW, TRUST)[0].language == language
