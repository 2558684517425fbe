"""The per-test time limit (tests/support/watchdog.py): a hung test fails, showing where it is stuck.

Each case runs pytest in a subprocess on a deliberately hanging test, with a limit of 2 s; the
subprocess itself is bounded (RUN_LIMIT_S), so a watchdog that does not fire fails these tests
instead of hanging them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
RUN_LIMIT_S = 120
INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
timeout = 2
timeout_grace = 1
"""


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeini(INI)

    def run_tests(source: str) -> pytest.RunResult:
        pytester.makepyfile(test_hanging=source)
        return pytester.runpytest_subprocess("-p", "tests.support.watchdog", "-p", "no:cacheprovider",
                                             timeout=RUN_LIMIT_S)

    return run_tests


def test_a_test_stuck_awaiting_a_message_fails_at_its_limit_with_every_tasks_stack_and_the_run_goes_on(run) -> None:  # type: ignore[no-untyped-def]
    result = run("""
import asyncio

async def fetch_loop_of_a_consumer():
    while True:
        await asyncio.sleep(0.05)

async def wait_for_a_message_that_never_comes():
    await asyncio.Event().wait()

async def test_hangs():
    fetcher = asyncio.create_task(fetch_loop_of_a_consumer())
    try:
        await wait_for_a_message_that_never_comes()
    finally:
        fetcher.cancel()

async def test_the_next_test_runs_on_the_same_loop():
    await asyncio.sleep(0)
""")
    result.assert_outcomes(failed=1, passed=1)
    out = result.stdout.str()
    assert "test_hanging.py::test_hangs did not finish within 2 s" in out
    assert "asyncio task(s) of the loop in thread MainThread" in out
    # The test's own task, where it awaits, and the other task it started, where that one loops.
    assert 'in wait_for_a_message_that_never_comes' in out and "await asyncio.Event().wait()" in out
    assert "in fetch_loop_of_a_consumer" in out
    assert "---- thread MainThread" in out


def test_a_test_blocked_in_synchronous_code_fails_at_its_limit_with_the_threads_stack(run) -> None:  # type: ignore[no-untyped-def]
    result = run("""
import subprocess, sys

def wait_for_a_process_that_never_ends():
    subprocess.run([sys.executable, "-c", "import time; time.sleep(600)"])

def test_hangs():
    wait_for_a_process_that_never_ends()
""")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "TestTimedOut" in out and "did not finish within 2 s" in out
    assert "in wait_for_a_process_that_never_ends" in out


def test_an_async_test_blocking_its_loop_is_stopped_after_the_grace_period(run) -> None:  # type: ignore[no-untyped-def]
    result = run("""
import time

async def test_hangs():
    time.sleep(600)  # blocks the loop: cancelling its task cannot take effect
""")
    result.assert_outcomes(failed=1)
    assert "TestTimedOut" in result.stdout.str()


def test_a_test_that_cannot_be_stopped_ends_the_run_showing_the_stacks(run) -> None:  # type: ignore[no-untyped-def]
    result = run("""
import time

def ignore_every_attempt_to_stop():
    while True:
        try:
            time.sleep(600)
        except BaseException:
            pass

def test_hangs():
    ignore_every_attempt_to_stop()
""")
    assert result.ret == 1
    err = result.stderr.str()
    assert "test_hanging.py::test_hangs could not be stopped; ending the run" in err
    assert "in ignore_every_attempt_to_stop" in err
