"""A second, throw-away Kafka broker with SASL/SCRAM-SHA-512 and ACLs, for the security tests.

It runs from the jars ``scripts/infra`` already cached (no download, no Docker),
on free ports, in a temporary directory, next to the default broker and
without touching it. The SCRAM users are created when the storage is formatted
(``kafka-storage format --add-scram``), as a production cluster's first
controller would be. ``StandardAuthorizer`` is on and denies what no ACL allows;
``admin`` is the super user (and ``ANONYMOUS``, which only the controller
listener, not reachable by clients in production, carries).
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.processes import free_port

REPO = Path(__file__).resolve().parents[2]
KAFKA_VERSION = "4.1.1"
ADMIN, ADMIN_PASSWORD = "admin", "admin-secret"


def kafka_libs() -> Path:
    cache = Path(os.environ.get("HELPDESK_CACHE_DIR") or Path.home() / ".cache" / "helpdesk")
    libs = cache / f"kafka-{KAFKA_VERSION}" / "libs"
    if not (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
        raise RuntimeError(f"no Kafka jars in {libs}: run `scripts/infra start` once (it downloads and caches them)")
    return libs


def cluster_id() -> str:
    """What ``kafka-storage random-uuid`` prints: a UUID in URL-safe base64 (never starting with '-')."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def server_properties(data: Path, port: int, controller_port: int) -> str:
    return f"""
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="{ADMIN}" password="{ADMIN_PASSWORD}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:{ADMIN};User:ANONYMOUS
allow.everyone.if.no.acl.found=false
log.dirs={data}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
"""


@dataclass(frozen=True)
class SaslBroker:
    bootstrap: str
    log: Path

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _java(libs: Path, *args: str, heap: tuple[str, ...] = ()) -> list[str]:
    log4j = REPO / "infra" / "kafka" / "log4j2.properties"
    return ["java", *heap, f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*", *args]


def _port_open(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@contextmanager
def sasl_broker(workdir: Path, users: Mapping[str, str], timeout: float = 60.0) -> Iterator[SaslBroker]:
    """Start the broker with ``users`` (name -> password) plus ``admin``; stop it afterwards."""
    libs = kafka_libs()
    port, controller_port = free_port(), free_port()
    data = workdir / "data"
    props = workdir / "server.properties"
    props.write_text(server_properties(data, port, controller_port))
    scram = [
        arg
        for name, password in {ADMIN: ADMIN_PASSWORD, **users}.items()
        for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")
    ]
    fmt = subprocess.run(
        _java(libs, "kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(props), *scram),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if fmt.returncode != 0:
        raise RuntimeError(f"kafka-storage format failed:\n{fmt.stdout}\n{fmt.stderr}")
    log = workdir / "kafka.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _java(libs, "kafka.Kafka", str(props), heap=("-Xms128m", "-Xmx512m")),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    broker = SaslBroker(f"127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + timeout
        while "Kafka Server started" not in log.read_text(errors="replace") or not _port_open(port):
            if proc.poll() is not None:
                raise RuntimeError(f"SASL test broker exited with {proc.returncode}:\n{broker.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"SASL test broker not up after {timeout:.0f}s:\n{broker.tail()}")
            time.sleep(0.2)
        yield broker
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# Kafka's protocol codes (org.apache.kafka.common.acl / resource).
_RESOURCE_TYPE = {"topic": 2, "group": 3}
_OPERATION = {"READ": 3, "WRITE": 4, "CREATE": 5, "DESCRIBE": 8, "DESCRIBE_CONFIGS": 10, "ALTER_CONFIGS": 11}
_LITERAL, _ALLOW = 3, 3


def admin_security() -> dict[str, str]:
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": ADMIN,
        "sasl_plain_password": ADMIN_PASSWORD,
    }


async def create_acls(bootstrap: str, acls: Iterable[Any]) -> None:
    """Create ALLOW bindings (``principal``, ``resource``, ``name``, ``operation``) as the super user.

    aiokafka's admin client has no ACL call, so this sends Kafka's CreateAcls request itself.
    """
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.protocol.admin import CreateAclsRequest

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **admin_security())
    await admin.start()
    try:
        for acl in acls:
            request = CreateAclsRequest(
                _RESOURCE_TYPE[acl.resource], acl.name, _LITERAL, f"User:{acl.principal}", "*",
                _OPERATION[acl.operation], _ALLOW,
            )
            response = await admin._send_request(request)
            [(code, message)] = response.creation_responses
            if code != 0:
                raise RuntimeError(f"CreateAcls {acl} failed: error {code} {message}")
    finally:
        await admin.close()
