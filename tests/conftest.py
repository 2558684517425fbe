"""Shared fixtures: a real broker, real databases, and isolation between tests.

Each test that touches Kafka gets its own topic prefix (so its topics are new
and empty); each PostgreSQL test gets its own freshly created database.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from runtime.topics_admin import ensure_topics
from tests.support.kafka import delete_topics
from tests.support import infra

# A time limit on every test that shows where a hung test is stuck (threads and asyncio tasks); a
# check that no process outlives the tests that need it; the one ticket service the client tests share.
pytest_plugins = ["tests.support.watchdog", "tests.support.leftover_processes", "tests.support.ticket_service_http"]

# The tests run the services with development credentials (the built-in token secret, intake open
# without API keys), as scripts/run does; a test of the safe defaults removes this from its process's env.
os.environ.setdefault("HELPDESK_DEVELOPMENT", "true")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with infra.kafka_bootstrap() as servers:
        yield servers


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    with infra.postgres_url() as url:
        yield url


# An e2e test starts five services as processes and waits for escalation deadlines: more time than
# the default limit (pyproject's `timeout`), which a test may still set itself with @pytest.mark.timeout.
E2E_TIMEOUT_S = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT_S))


TEST_PARTITIONS = 3  # more than one, to keep partitioning honest; few, to keep the broker light


@pytest.fixture
async def topic_prefix(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A fresh set of the registry's topics, under a prefix no other test uses; deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix, partitions=TEST_PARTITIONS)
    yield prefix
    await delete_topics(kafka_bootstrap, prefix)


# Creating or dropping a database may wait on other sessions: bounded, per statement.
ADMIN_STATEMENT_TIMEOUT_S = 60


def _admin_engine(server_url: str):  # type: ignore[no-untyped-def]
    return create_async_engine(
        server_url, isolation_level="AUTOCOMMIT", connect_args={"command_timeout": ADMIN_STATEMENT_TIMEOUT_S}
    )


async def _create_database(server_url: str) -> str:
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(server_url)
    try:
        for attempt in range(3):
            try:
                async with admin.connect() as conn:
                    # template0 takes no connections, so no other session can make the copy fail
                    await conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
                return name
            except Exception:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await admin.dispose()
    return name


async def _drop_database(server_url: str, name: str) -> None:
    """Drop a test's database, closing its sessions.

    An autovacuum worker may be visiting the new database; our role may not end it (only a
    superuser may), and the drop fails with "must be a member of the role whose process is being
    terminated": it ends on its own within moments, so the drop is tried again.
    """
    admin = _admin_engine(server_url)
    try:
        for attempt in range(5):
            try:
                async with admin.connect() as conn:
                    await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                return
            except Exception:
                if attempt == 4:
                    raise
                await asyncio.sleep(1.0)
    finally:
        await admin.dispose()


@pytest.fixture
async def postgres_database(postgres_server_url: str) -> AsyncIterator[str]:
    """URL of a new, empty PostgreSQL database, dropped after the test."""
    name = await _create_database(postgres_server_url)
    try:
        yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _drop_database(postgres_server_url, name)


@pytest.fixture
def sqlite_database(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """Runs the test once on SQLite and once on PostgreSQL (a fresh database each time)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    server = request.getfixturevalue("postgres_server_url")
    name = await _create_database(server)
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        await _drop_database(server, name)
