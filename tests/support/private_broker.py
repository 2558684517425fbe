"""A private, PLAINTEXT Kafka broker a test may stop and start again: an outage of its own.

The suite's broker is shared by every test (and every engineer's run), so it can never be
stopped. This one runs from the jars ``scripts/infra`` cached, on free ports and in the
test's own directory; :meth:`PrivateBroker.stop` takes it down (clients see refused
connections) and :meth:`PrivateBroker.start` brings it back on the same ports with the
same data, so topics and committed offsets survive the outage.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devtools.processes import free_port
from tests.deploy.sasl_broker import REPO, cluster_id, kafka_libs

START_TIMEOUT_S = 90.0


def server_properties(data: Path, port: int, controller_port: int) -> str:
    return f"""
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
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


class PrivateBroker:
    """One single-node KRaft broker in ``workdir``; ``bootstrap`` stays the same across restarts."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.libs = kafka_libs()
        self.port, self.controller_port = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.props = workdir / "server.properties"
        self.log = workdir / "kafka.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _java(self, *args: str, heap: tuple[str, ...] = ()) -> list[str]:
        log4j = REPO / "infra" / "kafka" / "log4j2.properties"
        return ["java", *heap, f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{self.libs}/*", *args]

    def format(self) -> None:
        self.props.write_text(server_properties(self.workdir / "data", self.port, self.controller_port))
        done = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(self.props)),
            capture_output=True, text=True, timeout=START_TIMEOUT_S,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        """Start it and wait until it serves (its log says so and its port answers)."""
        started_before = self._log_text().count("Kafka Server started")
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self._java("kafka.Kafka", str(self.props), heap=("-Xms128m", "-Xmx384m")),
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._log_text().count("Kafka Server started") <= started_before or not self._port_open():
            if self.process.poll() is not None:
                raise RuntimeError(f"the private broker exited with {self.process.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the private broker was not up within {START_TIMEOUT_S:.0f} s:\n{self.tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Take it down (SIGTERM, as an operator or a crashing node would), waiting until it is gone."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def _port_open(self) -> bool:
        import socket

        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def _log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self._log_text().splitlines()[-lines:])


@contextmanager
def private_broker(workdir: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(workdir)
    broker.format()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
