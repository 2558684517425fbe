"""Forgetting old event ids: the processed-events table would otherwise grow with every ticket event.

An id is kept only to recognise a redelivery of its event, and Kafka
redelivers within minutes (a rebalance, a retry), not days. Ids older than
the retention (7 days by default) are deleted, a chunk per transaction, by
a background worker that runs every ``interval_s``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from runtime.logs import get_logger
from services.escalation.adapters.store import DeadlineStore
from services.escalation.clock import Clock
from services.escalation.metrics import PROCESSED_EVENTS_PRUNED

log = get_logger("services.escalation.retention")


class ProcessedEventsRetention:
    def __init__(self, store: DeadlineStore, clock: Clock, *, retention: timedelta, interval_s: float) -> None:
        self._store = store
        self._clock = clock
        self._retention = retention
        self._interval_s = interval_s

    async def run(self) -> None:
        """The worker loop: a pruning, then a pause."""
        while True:
            await self.prune()
            await asyncio.sleep(self._interval_s)

    async def prune(self) -> int:
        """Delete the ids applied longer ago than the retention; the count deleted."""
        forgotten = await self._store.prune_processed(self._clock.now() - self._retention)
        PROCESSED_EVENTS_PRUNED.inc(forgotten)
        if forgotten:
            log.info("forgot old processed event ids", count=forgotten, retention_s=self._retention.total_seconds())
        return forgotten
