"""Waiting for a signal with a time limit, without ever swallowing a cancellation.

Python 3.11's ``asyncio.wait_for`` returns the awaited result instead of raising
``CancelledError`` when the task is cancelled in the same loop iteration as the
awaited thing finishes (gh-86296, fixed in 3.12 by rebuilding ``wait_for`` on
``asyncio.timeout``). A worker loop that waits that way (wake on new work, or
poll after a while) then runs on after it was told to stop, and its service
never finishes shutting down: the ticket relay did, hanging a test run for good.
``asyncio.timeout`` tells its own expiry from a cancellation from outside, so the
waits below always stop when their task is cancelled.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``event`` is set or ``timeout_s`` passed; True if it was set. A cancellation always propagates."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
