"""The customer's language, from the directory or the channel, through every service: German mail, a German desk.

The five services as processes over the real broker, with routing rules that
send German speakers to their own desk (round robin among the agents who speak
German; ``tests/e2e/languages/``) and a directory that knows one German
customer. What the customer hears is read from a real SMTP server's mailbox.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest

from contracts.topics import INCIDENTS_REPORTED
from devtools.demo import agent_token, eventually, mails_about, sample_incident, ticket_for_message
from devtools.mailbox import body_text
from devtools.processes import SERVICES, Suite, free_port
from runtime.topics_admin import ensure_topics
from tests.support.kafka import delete_topics, produce

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "languages"
RELAY = "mx.helpdesk.example"


@pytest.fixture(scope="module")
def suite(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    state = tmp_path_factory.mktemp("languages")
    directory = state / "directory.yaml"
    example = (ROOT / "services/intake/directory.example.yaml").read_text()
    directory.write_text(example + (FIXTURES / "german_customer.yaml").read_text())
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(ensure_topics(kafka_bootstrap, prefix, partitions=3))
    suite = Suite(
        state_dir=state / "suite",
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=prefix,
        ports={name: free_port() for name in SERVICES},
        smtp_port=free_port(),
        intake_smtp_port=free_port(),
        extra_env={
            "INTAKE_DIRECTORY_FILE": str(directory),
            "INTAKE_MAIL_TRUSTED_AUTHSERV_IDS": RELAY,
            "ROUTING_RULES_FILE": str(FIXTURES / "rules.yaml"),
            "ROUTING_AGENTS_FILE": str(FIXTURES / "agents.yaml"),
        },
    )
    try:
        suite.start(timeout=120)
        yield suite
    finally:
        suite.stop()
        asyncio.run(delete_topics(kafka_bootstrap, prefix))


@pytest.fixture
async def tickets_api(suite: Suite) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {agent_token(suite, 'alice')}"}
    async with httpx.AsyncClient(base_url=suite.url("tickets"), headers=headers, timeout=10) as client:
        yield client


async def _assigned(api: httpx.AsyncClient, channel: str, message_id: str) -> dict[str, Any] | None:
    ticket = await ticket_for_message(api, channel, message_id)
    return ticket if ticket and ticket["assignee"] else None


async def _acknowledgement(suite: Suite, number: str) -> Any:
    mails = [m for m in mails_about(suite, number) if "received" in str(m["Subject"]).lower()]
    return mails[0] if mails else None


async def test_a_german_customer_of_the_directory_gets_german_mail_and_a_german_speaking_agent(
    suite: Suite, tickets_api: httpx.AsyncClient
) -> None:
    incident = sample_incident("Drucker druckt nicht", email="lise.meitner@example.com")
    await produce(suite.kafka_bootstrap, suite.topic_prefix + INCIDENTS_REPORTED.name,
                  incident.model_dump_json().encode(), key=incident.data.partition_key.encode())  # fmt: skip

    ticket = await eventually(lambda: _assigned(tickets_api, "integration", incident.data.channel_message_id), 60)
    assert ticket["customer"]["language"] == "de"  # from the directory
    assert (ticket["queue"], ticket["assignee"]) == ("L1-german-desk", "agent-de")  # the German speaker of the desk
    mail = await eventually(lambda: _acknowledgement(suite, ticket["number"]), timeout=30)
    assert "lise.meitner@example.com" in str(mail["To"])
    assert "wir haben Ihre Anfrage erhalten" in body_text(mail) and "Guten Tag Lise Meitner" in body_text(mail)


async def test_a_language_chosen_on_the_web_form_routes_and_answers_an_unknown_customer_in_it(
    suite: Suite, tickets_api: httpx.AsyncClient
) -> None:
    message_id = f"web-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=suite.url("intake"), timeout=10) as intake:
        posted = await intake.post("/v1/incidents", json={
            "channel_message_id": message_id, "contact": {"email": "kunde@example.com"},
            "subject": "Kein WLAN im Büro", "language": "de",
        })  # fmt: skip
    assert posted.status_code == 202, posted.text
    ticket = await eventually(lambda: _assigned(tickets_api, "web", message_id), timeout=60)
    assert (ticket["customer"]["identified"], ticket["customer"]["language"]) == (False, "de")
    assert (ticket["queue"], ticket["assignee"]) == ("L1-german-desk", "agent-de")
    mail = await eventually(lambda: _acknowledgement(suite, ticket["number"]), timeout=30)
    assert "wir haben Ihre Anfrage erhalten" in body_text(mail)


async def test_a_mail_whose_reader_asks_for_german_is_answered_in_german(
    suite: Suite, tickets_api: httpx.AsyncClient
) -> None:
    mail = EmailMessage()
    mail["Authentication-Results"] = f"{RELAY}; dmarc=pass header.from=example.org"
    mail["From"], mail["To"], mail["Subject"] = "Max <max@example.org>", "helpdesk@example.com", "VPN geht nicht"
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@mail.example.org>"
    mail["Accept-Language"] = "de-DE, en;q=0.5"
    mail.set_content("Seit heute morgen.")
    await aiosmtplib.send(mail, hostname="127.0.0.1", port=suite.intake_smtp_port, timeout=15)

    async def opened() -> dict[str, Any] | None:
        return await ticket_for_message(tickets_api, "email", mail["Message-ID"])

    ticket = await eventually(opened, timeout=60)
    assert ticket["customer"]["language"] == "de-DE"
    answer = await eventually(lambda: _acknowledgement(suite, ticket["number"]), timeout=30)
    assert "wir haben Ihre Anfrage erhalten" in body_text(answer)
