"""A worker's wait for new work stops when its task is cancelled, even as the work arrives.

This is the hang of a full test run: the ticket relay was cancelled in the same loop
iteration as an append woke it; Python 3.11's ``asyncio.wait_for`` then returned instead
of raising, the relay went round its loop again, and its service never stopped.
"""

from __future__ import annotations

import asyncio

import pytest

from runtime.waits import wait_set


async def waiting(event: asyncio.Event, timeout_s: float) -> asyncio.Task[bool]:
    task = asyncio.create_task(wait_set(event, timeout_s))
    for _ in range(3):  # let it reach its wait
        await asyncio.sleep(0)
    assert not task.done()
    return task


async def test_a_wait_cancelled_as_its_event_is_set_is_cancelled() -> None:
    event = asyncio.Event()
    task = await waiting(event, 60)
    event.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_a_wait_says_whether_the_event_was_set_or_the_time_ran_out() -> None:
    event = asyncio.Event()
    task = await waiting(event, 60)
    event.set()
    assert await task is True
    assert await wait_set(asyncio.Event(), 0.01) is False
