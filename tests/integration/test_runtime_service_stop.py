"""A service stops even when one of its workers does not: it waits at most its shutdown timeout."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from runtime.service import Service
from runtime.settings import CommonSettings, HttpSettings


async def test_a_worker_that_ignores_its_cancellation_is_named_and_left_behind_after_the_shutdown_timeout(
    kafka_bootstrap: str,
) -> None:
    stubborn_running = asyncio.Event()
    release = asyncio.Event()

    async def stubborn() -> None:
        # A worker with the bug the relay had: it goes on after it was cancelled.
        stubborn_running.set()
        while not release.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue

    async def polite() -> None:
        await asyncio.Event().wait()

    common = CommonSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix="stop-test.")
    service = Service("stoptest", common, HttpSettings(shutdown_timeout_s=1.0), description="a test service")
    service.add_worker("stubborn", stubborn)
    service.add_worker("polite", polite)
    try:
        with capture_logs() as logs:
            async with service._lifespan(service.app):
                await asyncio.wait_for(stubborn_running.wait(), 30)
        [stuck] = [line for line in logs if line["event"].startswith("workers did not stop")]
        assert stuck["workers"] == ["stubborn"] and stuck["log_level"] == "error"
        assert any(line["event"] == "service stopped" for line in logs)
        assert service._tasks["polite"].cancelled()
    finally:
        release.set()
        await asyncio.wait([service._tasks["stubborn"]], timeout=10)
