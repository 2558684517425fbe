"""Where the tests find a real Kafka broker and a real PostgreSQL.

With a reachable Docker engine, testcontainers starts both. Without one (CI
here), the broker and database that ``scripts/infra start`` runs are given by
``KAFKA_BOOTSTRAP_SERVERS`` and ``HELPDESK_TEST_POSTGRES_URL``. Either way the
tests talk to real servers; there is no in-memory stand-in.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def docker_available() -> bool:
    if os.environ.get("HELPDESK_TESTS_NO_DOCKER"):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - no engine, no socket, no permission: all mean "no"
        return False


@contextmanager
def kafka_bootstrap() -> Iterator[str]:
    if docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        raise RuntimeError(
            "no Docker engine and KAFKA_BOOTSTRAP_SERVERS is not set: run the tests with scripts/test, "
            "or start a broker with scripts/infra start and eval \"$(scripts/infra env)\""
        )
    yield servers


@contextmanager
def postgres_url() -> Iterator[str]:
    if docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="asyncpg") as pg:
            yield pg.get_connection_url()
        return
    url = os.environ.get("HELPDESK_TEST_POSTGRES_URL")
    if not url:
        raise RuntimeError(
            "no Docker engine and HELPDESK_TEST_POSTGRES_URL is not set: run the tests with scripts/test, "
            "or start PostgreSQL with scripts/infra start and eval \"$(scripts/infra env)\""
        )
    yield url
