"""The check that no process outlives the tests that need it (tests/support/leftover_processes.py).

pytest runs in a subprocess on three modules: the first uses a forgotten session fixture (its
process lives until the run ends) and the shared ``ticket_service``; the second uses only the
shared one; the third uses neither. Both fixtures' processes are a ``sleep``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
CONFTEST = """
import subprocess, sys
import pytest

class Sleeper:
    def __init__(self, name):
        self.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", name])

    def stop(self):
        self.process.kill()
        self.process.wait(10)

@pytest.fixture(scope="session")
def ticket_service():
    sleeper = Sleeper("shared-service")
    yield sleeper
    sleeper.stop()

@pytest.fixture(scope="session")
def forgotten():
    sleeper = Sleeper("forgotten-service")
    yield sleeper
    sleeper.stop()
"""


def test_a_process_left_running_after_its_tests_fails_the_run_and_a_shared_one_stops_after_its_last_user(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_a="def test_uses_both(ticket_service, forgotten):\n    assert ticket_service.process.poll() is None\n",
        test_b="def test_uses_the_shared_one(ticket_service):\n    assert ticket_service.process.poll() is None\n",
        test_c="def test_uses_none():\n    pass\n",
    )
    result = pytester.runpytest_subprocess("-p", "tests.support.leftover_processes", "-p", "no:cacheprovider",
                                           timeout=120)
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    left = [line for line in result.outlines if line.startswith("after ")]
    # Only the forgotten one: the shared service was stopped after test_b, its last user.
    assert len(left) == 1 and left[0].startswith("after test_a.py: pid ") and "forgotten-service" in left[0], left


def test_a_run_that_leaves_nothing_running_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_a="def test_uses_the_shared_one(ticket_service):\n    pass\n",
        test_b="def test_too(ticket_service):\n    pass\n",
        test_c="def test_uses_none():\n    pass\n",
    )
    result = pytester.runpytest_subprocess("-p", "tests.support.leftover_processes", "-p", "no:cacheprovider",
                                           timeout=120)
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK and "processes left running" not in result.stdout.str()
