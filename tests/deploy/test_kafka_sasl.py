"""SASL/SCRAM and least-privilege ACLs, against a real broker that enforces them.

One broker for the module (about 7 s to format and start): SCRAM-SHA-512 users
made at format time, StandardAuthorizer on, and exactly the ACLs of
deploy/kafka/acls.yaml. The services and the topics Job connect with the
KAFKA_SECURITY_* / KAFKA_SASL_* settings a deployment gives them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAuthorizationFailedError

from contracts.commands import (
    TICKET_COMMANDS,
    EscalateTicket,
    EscalateTicketData,
    FlagTicket,
    FlagTicketData,
    RouteTicket,
    RouteTicketData,
)
from contracts.envelope import new_envelope
from contracts.incidents import CustomerProfile
from contracts.registry import parse_message
from contracts.tickets import TicketOpened, TicketOpenedData
from contracts.topics import (
    ALL_TOPICS,
    ESCALATION_COMMANDS,
    NOTIFY_COMMANDS,
    ROUTING_COMMANDS,
    SHARED_COMMANDS,
    TICKET_EVENTS_TOPIC,
)
from runtime.kafka import Publisher, make_broker
from runtime.settings import CommonSettings, ConfigError, load
from runtime.topics_admin import ensure_topics
from services.intake.bootstrap import build as build_intake
from services.intake.config import Settings as IntakeSettings
from services.routing.bootstrap import build as build_routing
from services.routing.config import Settings as RoutingSettings
from tests.deploy.repo import REPO, operations_tables
from tests.deploy.sasl_broker import (
    SaslBroker,
    admin_security,
    create_acls,
    sasl_broker,
)

PASSWORDS = {
    "helpdesk-topics-admin": "topics-admin-pw",
    "helpdesk-routing": "routing-pw",
    "helpdesk-intake": "intake-pw",
    "helpdesk-notify": "notify-pw",
}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    with sasl_broker(tmp_path_factory.mktemp("kafka-sasl"), PASSWORDS) as broker:
        asyncio.run(create_acls(broker.bootstrap, operations_tables().acl_bindings()))
        yield broker


def sasl_env(broker: SaslBroker, user: str, password: str | None = None) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": user,
        "KAFKA_SASL_PASSWORD": password or PASSWORDS[user],
    }


def sasl_settings(broker: SaslBroker, user: str, password: str | None = None) -> CommonSettings:
    env = sasl_env(broker, user, password)
    return CommonSettings(
        kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username=user,
        kafka_sasl_password=env["KAFKA_SASL_PASSWORD"],
        kafka_retry_backoff_ms=10,
        kafka_connect_timeout_s=5,
    )


def run_module(module: str, env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**clean, **env, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_topics_job_creates_every_topic_as_its_own_principal(secured: SaslBroker) -> None:
    job = run_module(
        "runtime.topics_admin",
        sasl_env(secured, "helpdesk-topics-admin"),
        "--replication-factor", "1", "--min-insync-replicas", "1",
    )
    assert job.returncode == 0, job.stderr
    assert f"{len(ALL_TOPICS)} topics present" in job.stdout
    again = run_module("runtime.topics_admin", sasl_env(secured, "helpdesk-topics-admin"))
    assert again.returncode == 0, again.stderr
    assert f"{len(ALL_TOPICS)} topics present (0 created, 0 reconfigured)" in again.stdout


async def test_the_topics_job_brings_an_existing_topics_retention_in_line_as_its_own_principal(
    secured: SaslBroker,
) -> None:
    # The topic as a release that kept the broker's 7-day default left it.
    await ensure_topics(secured.bootstrap, security=admin_security())
    admin = AIOKafkaAdminClient(bootstrap_servers=secured.bootstrap, **admin_security())
    await admin.start()
    try:
        week = ConfigResource(ConfigResourceType.TOPIC, TICKET_EVENTS_TOPIC.name, {"retention.ms": "604800000"})
        await admin.alter_configs([week])
    finally:
        await admin.close()
    job = await asyncio.to_thread(run_module, "runtime.topics_admin", sasl_env(secured, "helpdesk-topics-admin"))
    assert job.returncode == 0, job.stderr
    assert f"config of {TICKET_EVENTS_TOPIC.name} brought in line: retention.bytes=-1, retention.ms=-1" in job.stdout


def ticket_opened() -> TicketOpened:
    data = TicketOpenedData(
        number="HD-1",
        version=1,
        channel="email",
        channel_message_id=f"<{uuid.uuid4().hex}@example.com>",
        reported_at=datetime.now(UTC),
        subject="VPN outage in Leeds",
        description="",
        components=["vpn"],
        impact="high",
        urgency="high",
        customer=CustomerProfile(identified=True, identified_by="email", customer_id="u-1"),
    )
    return new_envelope(TicketOpened, data, ticket_id=uuid.uuid4())  # type: ignore[return-value]


@pytest.fixture
async def admin_publisher(secured: SaslBroker) -> AsyncIterator[Publisher]:
    await ensure_topics(secured.bootstrap, security=admin_security())
    broker = make_broker("test-admin", CommonSettings(
        kafka_bootstrap_servers=secured.bootstrap,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="admin",
        kafka_sasl_password=admin_security()["sasl_plain_password"],
    ))
    await broker.start()
    try:
        yield Publisher(broker, "test-admin")
    finally:
        await broker.stop()


async def route_commands_for(broker: SaslBroker, ticket_id: uuid.UUID, timeout: float = 20) -> list[RouteTicket]:
    consumer = AIOKafkaConsumer(
        ROUTING_COMMANDS.name, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None, **admin_security(),
    )
    await consumer.start()
    found: list[RouteTicket] = []
    deadline = time.monotonic() + timeout
    try:
        while not found and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                commands = [parse_message(r.value, TICKET_COMMANDS) for r in records]
                # routing may also assign the ticket (command.assign_ticket): only the routing decision is wanted
                found += [c for c in commands if isinstance(c, RouteTicket) and c.ticket_id == ticket_id]
    finally:
        await consumer.stop()
    return found


async def test_a_service_with_only_its_acls_consumes_and_publishes_over_sasl_scram(
    secured: SaslBroker, admin_publisher: Publisher, tmp_path: Path
) -> None:
    store = f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}"
    service = build_routing(sasl_settings(secured, "helpdesk-routing"), RoutingSettings(database_url=store))
    async with service._lifespan(service.app):
        assert (await service.readiness.report())["kafka"]
        opened = ticket_opened()
        await admin_publisher.publish(TICKET_EVENTS_TOPIC, opened, str(opened.ticket_id))
        [command] = await route_commands_for(secured, opened.ticket_id)
    assert isinstance(command.data, RouteTicketData)
    assert command.data.priority == 1  # read the event, decided, and wrote the command


async def test_intake_starts_with_only_its_acls_once_the_job_made_the_topics(secured: SaslBroker, tmp_path: Path) -> None:
    # intake looks the directory topic up at start-up and consumes three topics in three groups
    await ensure_topics(secured.bootstrap, security=admin_security())
    settings = IntakeSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}", smtp_enabled=False)
    service = build_intake(sasl_settings(secured, "helpdesk-intake"), settings)
    async with service._lifespan(service.app):
        report = await service.readiness.report()
    assert report and all(report.values()), report


async def test_a_service_is_denied_a_topic_its_acls_do_not_grant(secured: SaslBroker, admin_publisher: Publisher) -> None:
    intake = make_broker("intake", sasl_settings(secured, "helpdesk-intake"))
    await intake.start()
    try:
        publisher = Publisher(intake, "intake")
        opened = ticket_opened()
        with pytest.raises(TopicAuthorizationFailedError):
            # intake may write incidents, never ticket events
            await asyncio.wait_for(publisher.publish(TICKET_EVENTS_TOPIC, opened, str(opened.ticket_id)), 20)
    finally:
        await intake.stop()


async def test_notify_may_write_only_its_own_command_topic(secured: SaslBroker, admin_publisher: Publisher) -> None:
    notify = make_broker("notify", sasl_settings(secured, "helpdesk-notify"))
    await notify.start()
    try:
        publisher = Publisher(notify, "notify")
        ticket_id = uuid.uuid4()
        flag = new_envelope(FlagTicket, FlagTicketData(flag="escalated", reason="paged", raised_by="notify"),
                            ticket_id=ticket_id)  # fmt: skip
        await asyncio.wait_for(publisher.publish(NOTIFY_COMMANDS, flag, str(ticket_id)), 20)
        escalate = new_envelope(
            EscalateTicket,
            EscalateTicketData(level=2, queue="L2", reason="forged", deadline=datetime.now(UTC)),
            ticket_id=ticket_id,
        )
        for elsewhere in (ESCALATION_COMMANDS, ROUTING_COMMANDS, SHARED_COMMANDS):
            with pytest.raises(TopicAuthorizationFailedError):
                await asyncio.wait_for(publisher.publish(elsewhere, escalate, str(ticket_id)), 20)
    finally:
        await notify.stop()


def test_a_wrong_password_stops_the_service_and_its_log_says_why(secured: SaslBroker) -> None:
    env = {**sasl_env(secured, "helpdesk-routing", password="not-the-password"), "KAFKA_CONNECT_TIMEOUT_S": "1",
           "ROUTING_HTTP_PORT": "0"}
    routing = run_module("services.routing", env, timeout=60)
    assert routing.returncode != 0
    output = routing.stdout + routing.stderr
    assert "refused our credentials" in output and "SaslAuthenticationFailed" in output, output[-3000:]
    assert "cannot reach Kafka" not in output, output[-3000:]


def test_sasl_without_credentials_is_a_configuration_error_naming_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "helpdesk-notify")
    with pytest.raises(ConfigError) as caught:
        load(CommonSettings)
    assert "KAFKA_SASL_PASSWORD:" in caught.value.message
    assert "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are both required when KAFKA_SECURITY_PROTOCOL is SASL_SSL" in (
        caught.value.message
    )


def test_tls_settings_give_an_ssl_context_trusting_the_given_ca(tmp_path: Path) -> None:
    import certifi

    from runtime.kafka import client_security_options

    common = CommonSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="helpdesk-notify",
        kafka_sasl_password="pw",
        kafka_ssl_ca_file=Path(certifi.where()),
    )
    options = client_security_options(common)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["ssl_context"].check_hostname is True
    assert options["ssl_context"].cert_store_stats()["x509_ca"] > 0
    plain_tls = client_security_options(CommonSettings(kafka_security_protocol="SSL"))
    assert plain_tls["security_protocol"] == "SSL" and "sasl_mechanism" not in plain_tls
    assert client_security_options(CommonSettings()) == {}
