"""No process outlives the tests that need it.

A session fixture that starts a process (the ticket service the client tests share) would keep it
running, idle but polling Kafka, until the whole run ends. Two rules, checked here:

* a shared process fixture named in ``STOPPED_AFTER_LAST_USER`` is stopped (its value's ``stop()``)
  right after the last test that uses it, not at the end of the session;
* after each test module, the test process has no child process left running except the processes
  of those shared fixtures that still have users to come. Any other is reported at the end, with its command line
  and the module after which it was found, and fails the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Session fixtures whose value runs a process (``.process``, a Popen) and has ``stop()``: one
# process, shared, stopped right after its last user.
STOPPED_AFTER_LAST_USER = ("ticket_service",)

USERS = pytest.StashKey[dict[str, tuple[int, int]]]()  # fixture -> (index of its first user, of its last)
INDEX = pytest.StashKey[dict[str, int]]()  # test id -> its place in the run
LEFTOVERS = pytest.StashKey[list["Leftover"]]()
SHARED = pytest.StashKey[dict[str, Any]]()  # fixture -> its value (with .process and .stop()), once set up


@dataclass(frozen=True)
class Leftover:
    after: str  # the module whose tests had ended
    pid: int
    command: str


@pytest.hookimpl(trylast=True)  # after deselection (-k, -m), on the tests that will really run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    users: dict[str, tuple[int, int]] = {}
    for index, item in enumerate(items):
        for name in STOPPED_AFTER_LAST_USER:
            if name in getattr(item, "fixturenames", ()):
                first, _ = users.get(name, (index, index))
                users[name] = (first, index)
    config.stash[USERS] = users
    config.stash[INDEX] = {item.nodeid: index for index, item in enumerate(items)}
    config.stash[LEFTOVERS] = []
    config.stash[SHARED] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    result = yield
    index = item.config.stash[INDEX].get(item.nodeid)
    if index is None:
        return result
    shared = item.config.stash[SHARED]
    for name, (_, last) in item.config.stash[USERS].items():
        value = (getattr(item, "funcargs", None) or {}).get(name)  # absent if its set-up failed
        if value is None:
            continue
        shared[name] = value
        if index == last:
            value.stop()
    if nextitem is None or _module(nextitem) != _module(item):
        _check_children(item, index)
    return result


def _check_children(item: pytest.Item, index: int) -> None:
    """Report every child process but those of shared fixtures with users still to come."""
    users, shared = item.config.stash[USERS], item.config.stash[SHARED]
    still_needed = {
        pid for name, value in shared.items()
        if users[name][0] <= index < users[name][1] and (pid := getattr(getattr(value, "process", None), "pid", None))
    }
    leftovers = item.config.stash[LEFTOVERS]
    known = {leftover.pid for leftover in leftovers} | still_needed
    leftovers.extend(
        Leftover(_module(item), pid, command) for pid, command in running_children().items() if pid not in known
    )


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    leftovers = config.stash.get(LEFTOVERS, [])
    if not leftovers:
        return
    terminalreporter.section("processes left running", sep="=", red=True)
    for leftover in leftovers:
        terminalreporter.line(f"after {leftover.after}: pid {leftover.pid}: {leftover.command}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.stash.get(LEFTOVERS, []) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def running_children(parent: int | None = None) -> dict[int, str]:
    """The live (not zombie) child processes of ``parent`` (this process): pid -> command line."""
    parent = os.getpid() if parent is None else parent
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after its last ')'
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
            if int(ppid) == parent and state != "Z":
                command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                children[int(stat.parent.name)] = command.strip()
        except (OSError, ValueError, IndexError):
            continue  # it ended while we looked
    return children
