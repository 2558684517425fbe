"""Header values never carry a line break: the subject is folded onto one line, anything else is refused."""

from __future__ import annotations

import email
import email.policy
import uuid
from datetime import UTC, datetime

import pytest

from services.notify.adapters.headers import UnsafeHeader, header_value
from services.notify.adapters.smtp import build_message
from services.notify.domain import Notification
from services.notify.rendering import Rendered

ATTACK = "x\r\nReply-To: attacker@evil.test\r\n\r\nbody"
BODY = Rendered(text="We have received your request.", html="<p>We have received your request.</p>")


def mail(**fields: object) -> Notification:
    values: dict[str, object] = {
        "notification_key": "opened.1", "cause": uuid.uuid4(), "method": "email", "to": "ada@example.com",
        "subject": "[HD-1] Received: printer", "template": "ticket_opened", "context": {"number": "HD-1"},
    }
    return Notification(**{**values, **fields})  # type: ignore[arg-type]


def sent(notification: Notification) -> email.message.EmailMessage:
    raw = build_message(notification, BODY, sender="helpdesk@helpdesk.example", date=datetime.now(UTC))
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


@pytest.mark.parametrize("subject", [f"[HD-1] Received: {ATTACK}", f"[HD-1] Reçu : {ATTACK}"])
def test_a_subject_with_line_breaks_is_folded_onto_its_one_line(subject: str) -> None:
    message = sent(mail(subject=subject))
    assert message["Reply-To"] is None
    assert message["Subject"] == subject.replace("\r\n\r\n", " ").replace("\r\n", " ")
    assert message.get_body(preferencelist=("plain",)).get_content() == BODY.text  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "value", ["x\ny", "x\rBcc: evil@evil.test", "x\x00", "x\x1b[31m", "x\x7f", "x\x85y", "x\u2028y", "x\ty"]
)
def test_any_control_character_in_an_address_is_refused(value: str) -> None:
    with pytest.raises(UnsafeHeader, match="refused: the To header value"):
        sent(mail(to=f"ada@example.com{value}"))


def test_a_thread_id_with_a_line_break_is_refused() -> None:
    with pytest.raises(UnsafeHeader, match="In-Reply-To"):
        sent(mail(thread=("<m-1@example.com>\r\nBcc: evil@evil.test",)))


def test_free_text_keeps_its_words_and_tabs_and_loses_only_the_breaks() -> None:
    assert header_value("Subject", "a \r\n\t b\x85c\u2029\td\te", free_text=True) == "a b c d\te"
