"""scripts/system-packages: the one place that installs what a fresh machine lacks.

The script runs for real, on a PATH of stand-in programs that play a machine with or without
each tool (``java`` answering an old version, ``apt-get`` writing down what it was asked), so
nothing is installed on this machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.repo import REPO as ROOT

SCRIPT = ROOT / "scripts" / "system-packages"
BASH = shutil.which("bash") or "/bin/bash"
EVERYTHING_MISSING = ["postgresql", "openjdk-17-jre-headless", "maven", "docker-compose", "python3", "python3-venv"]


class Machine:
    """A directory of stand-in programs (the whole PATH) and a PostgreSQL library directory."""

    def __init__(self, root: Path) -> None:
        self.bin, self.pg_lib, self.calls = root / "bin", root / "postgresql", root / "calls"
        self.bin.mkdir()
        self.pg_lib.mkdir()
        self.calls.touch()
        self.calls.chmod(0o666)  # written by the stand-ins, also when they run as nobody
        # Known to the archive, as on Debian 12; a test removes it to play a newer release.
        self.program("apt-cache", '[[ "$*" == "show openjdk-17-jre-headless" ]]')
        self.program("apt-get", f'echo "apt-get $*" >> {self.calls}')

    def program(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(f"#!{BASH}\n{body}\n")
        path.chmod(0o755)

    def has_java(self, version: str) -> None:
        self.program("java", f'echo \'openjdk version "{version}" 2024-01-16\' >&2')

    def has_everything(self) -> None:
        self.has_java("17.0.10")
        for name in ("mvn", "docker-compose"):
            self.program(name, "exit 0")
        self.program("python3", "exit 0")  # `python3 -c 'import ensurepip, venv'` succeeds
        server = self.pg_lib / "16" / "bin" / "postgres"
        server.parent.mkdir(parents=True)
        server.write_text("")
        server.chmod(0o755)

    def run(self, *args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
        env = {"PATH": str(self.bin), "HELPDESK_PG_LIBDIR": str(self.pg_lib)}
        argv = [BASH, str(SCRIPT), *args]
        if user is not None:  # a user who is not root, played by root
            argv = [shutil.which("setpriv") or "setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                    *argv]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, cwd="/")

    def installed(self) -> list[str]:
        return self.calls.read_text().splitlines()


@pytest.fixture
def machine() -> Iterator[Machine]:
    # Not under pytest's tmp_path: its parents are private to root, and one test runs as nobody.
    with tempfile.TemporaryDirectory() as root:
        os.chmod(root, 0o755)
        yield Machine(Path(root))


def test_a_fresh_machine_is_told_every_package_it_lacks_and_a_dry_run_installs_nothing(machine: Machine) -> None:
    result = machine.run("--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"dry run: would install {' '.join(EVERYTHING_MISSING)}" in result.stdout
    for package in ("postgresql", "JAVA", "maven", "docker-compose", "python3", "python3-venv"):
        assert f"missing {package}:" in result.stdout
    assert machine.installed() == []


def test_a_java_older_than_17_is_missing_and_a_release_without_17_gets_its_default_java(machine: Machine) -> None:
    machine.has_everything()
    machine.has_java("11.0.22")
    machine.program("apt-cache", "exit 100")  # e.g. Debian 13: openjdk-21 only
    result = machine.run("--dry-run")
    assert 'missing JAVA: Java 17+ for Kafka (found: openjdk version "11.0.22"' in result.stdout
    assert "dry run: would install default-jre-headless" in result.stdout


def test_a_machine_with_everything_installs_nothing(machine: Machine) -> None:
    machine.has_everything()
    result = machine.run()
    assert (result.returncode, result.stdout.strip()) == (0, "system-packages: all present"), result.stderr
    assert machine.installed() == []


def test_as_root_it_installs_only_what_is_missing(machine: Machine) -> None:
    if os.geteuid() != 0:
        pytest.skip("plays root: runs only where the tests run as root (CI)")
    machine.has_everything()
    (machine.bin / "mvn").unlink()
    (machine.bin / "docker-compose").unlink()
    result = machine.run()
    assert result.returncode == 0, result.stderr
    assert machine.installed() == [
        "apt-get update -q",
        "apt-get install -y -q --no-install-recommends maven docker-compose",
    ]


def test_a_user_installs_through_sudo(machine: Machine) -> None:
    machine.has_everything()
    machine.has_java("1.8.0_392")
    machine.program("sudo", f'echo "sudo $*" >> {machine.calls}; "$@"')
    result = machine.run(user=None if os.geteuid() else 65534)
    assert result.returncode == 0, result.stderr
    assert machine.installed() == [
        "sudo apt-get update -q",
        "apt-get update -q",
        "sudo apt-get install -y -q --no-install-recommends openjdk-17-jre-headless",
        "apt-get install -y -q --no-install-recommends openjdk-17-jre-headless",
    ]


def test_a_user_without_sudo_is_told_what_to_install_as_root(machine: Machine) -> None:
    machine.has_everything()
    (machine.bin / "mvn").unlink()
    result = machine.run(user=None if os.geteuid() else 65534)
    assert result.returncode == 1
    assert "missing maven, and this is not root and there is no sudo" in result.stderr
    assert "apt-get install maven" in result.stderr
    assert machine.installed() == []


def test_the_readmes_test_command_and_ci_set_up_the_system_through_the_one_script() -> None:
    test, ci = (ROOT / "scripts" / "test").read_text(), (ROOT / ".ci" / "run").read_text()
    assert '"$REPO/scripts/system-packages"' in test
    assert test.index("scripts/system-packages") < test.index("scripts/bootstrap-python\"\n")
    assert "\nscripts/system-packages\n" in ci and "apt-get" not in ci
