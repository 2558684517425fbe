"""A per-test time limit that shows where a hung test is stuck: every thread's stack and every task's.

pytest-timeout decides each test's limit (``timeout`` in pyproject.toml, ``@pytest.mark.timeout(s)``,
``--timeout``); this plugin takes over its timer through pytest-timeout's ``pytest_timeout_set_timer``
hook. pytest-timeout's own methods show threads only, and a test stuck in an ``await`` shows nothing
there: the main thread just sits in the event loop's ``select()``. When a test reaches its limit the
watchdog

1. writes down the stack of every thread and of every task of every running event loop;
2. ends the test: it cancels the test's task when the main thread's loop is idle (the tests share one
   loop, which lives on for the next tests), or raises in the main thread by a signal when it is
   blocked in synchronous code;
3. if the test has still not ended ``timeout_grace`` seconds later, it signals the main thread (again),
   and after one more grace period writes the stacks to the terminal and ends the run (``os._exit``),
   as pytest-timeout's thread method does.

The test fails with the stacks as its report. pytest's ``faulthandler_timeout`` stays set as the last
resort: its C watchdog dumps the threads even when no Python thread can run.
"""

from __future__ import annotations

import asyncio
import gc
import io
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from types import FrameType

import pytest

STACKS = pytest.StashKey[str]()
WATCHDOG = pytest.StashKey["Watchdog"]()
DEFAULT_GRACE_S = 15.0


class TestTimedOut(Exception):
    """Raised in the main thread when a test blocked in synchronous code reached its limit."""

    __test__ = False  # not a test class, despite its name


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "timeout_grace",
        "seconds a timed-out test gets to end after it was cancelled, before the run is ended",
        default=str(DEFAULT_GRACE_S),
    )


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: object) -> bool:
    watchdog = Watchdog(item, float(settings.timeout), float(item.config.getini("timeout_grace")))  # type: ignore[attr-defined]
    item.stash[WATCHDOG] = watchdog
    watchdog.start()
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> bool:
    watchdog = item.stash.get(WATCHDOG, None)
    if watchdog is not None:
        watchdog.stop()
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    stacks = item.stash.get(STACKS, None)
    if stacks is not None and report.failed and not getattr(item, "_timeout_reported", False):
        item._timeout_reported = True  # type: ignore[attr-defined] - the first failing phase tells it
        report.longrepr = f"{stacks}\n(what the test raised when it was stopped: {call.excinfo and call.excinfo.exconly()})"
    return report


class Watchdog:
    """One test's limit, watched from a thread of its own."""

    def __init__(self, item: pytest.Item, limit_s: float, grace_s: float) -> None:
        self.item, self.limit_s, self.grace_s = item, limit_s, grace_s
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._watch, name=f"watchdog {item.nodeid}", daemon=True)
        # Called in the main thread (pytest runs the tests there): only it may set a signal handler.
        self.previous_handler = signal.signal(signal.SIGALRM, self._raise_in_main_thread)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.ended.set()
        self.thread.join()
        signal.signal(signal.SIGALRM, self.previous_handler)

    def _raise_in_main_thread(self, _signum: int, _frame: FrameType | None) -> None:
        raise TestTimedOut(f"{self.item.nodeid} did not finish within {self.limit_s:g} s")

    def _watch(self) -> None:
        if self.ended.wait(self.limit_s):
            return
        stacks = describe_stacks(f"Timeout: {self.item.nodeid} did not finish within {self.limit_s:g} s")
        self.item.stash[STACKS] = stacks
        if not cancel_main_task():
            signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)  # type: ignore[arg-type]
        if self.ended.wait(self.grace_s):
            return
        # Cancelling did not end it: the loop's thread is busy in synchronous code. Raise there.
        signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)  # type: ignore[arg-type]
        if self.ended.wait(self.grace_s):
            return
        self._end_the_run(describe_stacks(f"Timeout: {self.item.nodeid} could not be stopped; ending the run"))

    def _end_the_run(self, stacks: str) -> None:
        capture = self.item.config.pluginmanager.getplugin("capturemanager")
        if capture is not None:
            capture.suspend_global_capture(self.item)
        try:
            sys.stderr.write(f"{self.item.stash.get(STACKS, '')}\n{stacks}\n")
            sys.stderr.flush()
        finally:
            os._exit(1)


def running_loops() -> list[asyncio.AbstractEventLoop]:
    """Every event loop running in this process, in any thread (loops know their thread, threads not their loop)."""
    return [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]


def loop_thread(loop: asyncio.AbstractEventLoop) -> int | None:
    return getattr(loop, "_thread_id", None)


def cancel_main_task() -> bool:
    """Cancel the task the main thread's loop was asked to run to completion (the test or its fixture)."""
    main = threading.main_thread().ident
    for loop in running_loops():
        if loop_thread(loop) != main:
            continue
        for task in _tasks(loop):
            if _is_run_to_completion(task):
                loop.call_soon_threadsafe(task.cancel, "the test reached its time limit")
                return True
    return False


def _is_run_to_completion(task: asyncio.Task[object]) -> bool:
    # run_until_complete() stops the loop through this done-callback on the task it runs.
    callbacks = getattr(task, "_callbacks", None) or []
    return any(getattr(callback, "__name__", "") == "_run_until_complete_cb" for callback, _context in callbacks)


def _tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[object]]:
    for _attempt in range(5):  # the set may change under us while the loop's thread runs
        try:
            return sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name())
        except RuntimeError:
            continue
    return []


def describe_stacks(title: str) -> str:
    """Every thread's stack, then every task's stack of every running loop."""
    out = io.StringIO()
    out.write(f"{'+' * 30} {title} {'+' * 30}\n")
    names = {t.ident: t.name for t in threading.enumerate()}
    me = threading.get_ident()
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        out.write(f"\n---- thread {names.get(ident, '?')} ({ident}) ----\n")
        out.write("".join(traceback.format_stack(frame)))
    for loop in running_loops():
        tasks = _tasks(loop)
        out.write(f"\n---- {len(tasks)} asyncio task(s) of the loop in thread {names.get(loop_thread(loop), '?')} ----\n")
        for task in tasks:
            _describe_task(task, out)
    return out.getvalue()


def _describe_task(task: asyncio.Task[object], out: io.StringIO) -> None:
    marker = "  <- the task the test runs in" if _is_run_to_completion(task) else ""
    out.write(f"\n{task!r}{marker}\n")
    try:
        frames = list(_awaiting(task.get_coro()))
        out.write("".join(traceback.StackSummary.extract((f, f.f_lineno) for f in frames).format()))
    except Exception as exc:  # noqa: BLE001 - a frame that changed under us must not hide the others
        out.write(f"  (stack unavailable: {exc!r})\n")


def _awaiting(coro: object) -> Iterator[FrameType]:
    """The frames of a suspended coroutine and of what it awaits, down to the innermost.

    ``Task.print_stack`` shows only the outermost frame of a suspended task; the interesting one
    (which fetch, which wait) is at the bottom of the chain of awaits.
    """
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            yield frame
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None) or getattr(coro, "ag_await", None)
