"""The five services as processes, driven only through public surfaces:
the intake topic and HTTP endpoint, the ticket query API, the dead-letter
topic and a real SMTP server's mailbox.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.topics import DEAD_LETTERS, INCIDENTS_IDENTIFIED, INCIDENTS_REPORTED
from devtools.demo import agent_token, eventually, find_ticket, mails_about, sample_incident, ticket_for_message
from devtools.mailbox import body_text
from devtools.processes import SERVICES, Suite, free_port
from tests.support.kafka import group_lag, produce, read_all

pytestmark = pytest.mark.e2e
ESCALATE_AFTER_S = 4


@pytest.fixture
def suite(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[Suite]:
    suite = Suite(
        state_dir=tmp_path / "suite",
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        ports={name: free_port() for name in SERVICES},
        smtp_port=free_port(),
        intake_smtp_port=free_port(),
        extra_env={"ESCALATION_UNCLAIMED_AFTER_S": str(ESCALATE_AFTER_S), "ESCALATION_TIMER_INTERVAL_S": "0.2"},
    )
    try:
        suite.start(timeout=120)
        yield suite
    finally:
        codes = suite.stop()
        logs = {name: proc.tail(20) for name, proc in suite.processes.items()}
        assert all(code in (0, None) for code in codes.values()), f"unclean shutdown {codes}\n{logs}"


@pytest.fixture
async def tickets_api(suite: Suite) -> AsyncIterator[httpx.AsyncClient]:
    token = agent_token(suite, "alice")
    async with httpx.AsyncClient(
        base_url=suite.url("tickets"), headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        yield client


async def _routed(api: httpx.AsyncClient, channel: str, message_id: str) -> dict[str, Any] | None:
    ticket = await ticket_for_message(api, channel, message_id)
    return ticket if ticket and ticket["queue"] and ticket["priority"] else None


async def _drained(suite: Suite, group: str, topic: str) -> bool:
    return await group_lag(suite.kafka_bootstrap, suite.topic_prefix + group, suite.topic_prefix + topic) == 0


async def test_an_incident_goes_from_the_topic_to_the_customers_resolution_email(
    suite: Suite, tickets_api: httpx.AsyncClient
) -> None:
    incident = sample_incident("Payroll export fails", email="ADA.LOVELACE@example.com")
    await produce(suite.kafka_bootstrap, suite.topic_prefix + INCIDENTS_REPORTED.name,
                  incident.model_dump_json().encode(), key=incident.data.partition_key.encode())

    ticket = await eventually(lambda: _routed(tickets_api, "integration", incident.data.channel_message_id), timeout=60)
    assert ticket["number"].startswith("HD-")
    assert ticket["customer"]["name"] == "Ada Lovelace"  # identified from the directory, enriched before anyone saw it
    assert ticket["customer"]["department"] == "Finance"
    assert "SAP GUI 8.0" in ticket["customer"]["software"]
    assert 1 <= ticket["priority"] <= 5
    history = [e["type"] for e in ticket["history"]]
    assert history[:3] == ["ticket.opened", "ticket.prioritised", "ticket.routed"]

    claimed = await tickets_api.post(f"/v1/tickets/{ticket['number']}/claim")
    assert claimed.status_code == 200 and claimed.json()["assignee"] == "alice"
    resolved = await tickets_api.post(
        f"/v1/tickets/{ticket['number']}/resolve", json={"resolution": "Cleared the stuck export batch."}
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"

    mails = await eventually(lambda: _as_coroutine(_resolution_mails(suite, ticket["number"])), timeout=30)
    assert len(mails) == 1
    assert mails[0]["To"] == "ada.lovelace@example.com" or "ada.lovelace@example.com" in str(mails[0]["To"]).lower()
    assert "Cleared the stuck export batch." in body_text(mails[0])


async def test_an_incident_posted_over_http_opens_a_ticket(suite: Suite, tickets_api: httpx.AsyncClient) -> None:
    message_id = f"web-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=suite.url("intake")) as intake:
        response = await intake.post("/v1/incidents", json={
            "channel_message_id": message_id, "contact": {"phone": "0161 496 0742"},
            "subject": "Licence server down", "impact": "high", "urgency": "high",
        })
    assert response.status_code == 202, response.text
    ticket = await eventually(lambda: _routed(tickets_api, "web", message_id), timeout=60)
    assert ticket["customer"]["name"] == "Alan Turing"  # found by a national-format phone number
    assert ticket["priority"] == 1


async def test_a_redelivered_incident_opens_one_ticket(suite: Suite, tickets_api: httpx.AsyncClient) -> None:
    incident = sample_incident("Duplicate delivery", email="grace.hopper@example.com")
    raw = incident.model_dump_json().encode()
    topic = suite.topic_prefix + INCIDENTS_REPORTED.name
    await produce(suite.kafka_bootstrap, topic, raw, key=incident.data.partition_key.encode())
    first = await eventually(lambda: ticket_for_message(tickets_api, "integration", incident.data.channel_message_id), timeout=60)

    await produce(suite.kafka_bootstrap, topic, raw, key=incident.data.partition_key.encode())  # Kafka redelivers
    await eventually(lambda: _drained(suite, "helpdesk-intake", INCIDENTS_REPORTED.name), timeout=30)
    await eventually(lambda: _drained(suite, "helpdesk-tickets-incidents", INCIDENTS_IDENTIFIED.name), timeout=30)

    listed = (await tickets_api.get("/v1/tickets", params={
        "channel": "integration", "channel_message_id": incident.data.channel_message_id,
    })).json()["tickets"]
    assert [t["number"] for t in listed] == [first["number"]]


async def test_a_malformed_message_is_dead_lettered_and_the_next_one_goes_through(
    suite: Suite, tickets_api: httpx.AsyncClient
) -> None:
    topic = suite.topic_prefix + INCIDENTS_REPORTED.name
    await produce(suite.kafka_bootstrap, topic, b'{"type": "incident.reported", "schema_version": 1, "data": {}}', key=b"k1")
    good = sample_incident("After the bad one", email="tbl@example.com")
    await produce(suite.kafka_bootstrap, topic, good.model_dump_json().encode(), key=b"k1")  # same partition, after it

    ticket = await eventually(lambda: _routed(tickets_api, "integration", good.data.channel_message_id), timeout=60)
    assert ticket["customer"]["name"] == "Tim Berners-Lee"
    [dead] = await read_all(suite.kafka_bootstrap, suite.topic_prefix + DEAD_LETTERS.name)
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["dlt.origin.topic"] == topic
    assert headers["dlt.kind"] == "invalid"
    assert "invalid incident.reported" in headers["dlt.reason"]


async def test_an_unclaimed_ticket_escalates_to_the_next_level_when_its_deadline_passes(
    suite: Suite, tickets_api: httpx.AsyncClient
) -> None:
    incident = sample_incident("Nobody picks this up", email="k.johnson@example.com")
    await produce(suite.kafka_bootstrap, suite.topic_prefix + INCIDENTS_REPORTED.name,
                  incident.model_dump_json().encode(), key=incident.data.partition_key.encode())
    ticket = await eventually(lambda: _routed(tickets_api, "integration", incident.data.channel_message_id), timeout=60)
    assert ticket["level"] == 1

    async def escalated() -> dict[str, Any] | None:
        current = await find_ticket(tickets_api, ticket["number"])
        return current if current and current["level"] == 2 else None

    current = await eventually(escalated, timeout=ESCALATE_AFTER_S + 30)
    assert current["queue"] == "L2-specialists"
    assert current["history"][-1]["type"] == "ticket.escalated"
    queue = (await tickets_api.get("/v1/queues/L2-specialists/tickets")).json()["tickets"]
    assert ticket["number"] in [t["number"] for t in queue]
    page = await eventually(lambda: _as_coroutine(_escalation_mails(suite, ticket["number"])), timeout=30)
    assert "l2-oncall@helpdesk.example" in str(page[0]["To"])


async def _as_coroutine(value: Any) -> Any:
    return value


def _escalation_mails(suite: Suite, number: str) -> list[Any]:
    return [m for m in mails_about(suite, number) if "escalated" in str(m["Subject"]).lower()]


def _resolution_mails(suite: Suite, number: str) -> list[Any]:
    return [m for m in mails_about(suite, number) if "resolved" in str(m["Subject"]).lower()]
