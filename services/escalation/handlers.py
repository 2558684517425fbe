"""Ticket events in, deadlines out: the consumer of the ticket events topic.

A batch is applied in one transaction, set-based: one look-up of which of its
events were applied before, one read of its tickets' deadlines, the events
folded over them in order in memory, then one upsert of the deadlines that
changed and one insert of the events' ``processed_events`` rows. A
redelivered event is skipped, so a redelivered batch changes nothing. Events
that move no deadline (``ticket.prioritised``...) cost no database work:
ignoring them again is just as idempotent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from contracts.envelope import Envelope
from runtime.consumer import Delivery, PoisonMessage
from runtime.kafka import Publisher
from runtime.logs import get_logger, log_context
from services.escalation.adapters.store import DeadlineStore
from services.escalation.clock import Clock
from services.escalation.domain.deadline import Deadline
from services.escalation.domain.policy import EscalationPolicy
from services.escalation.domain.ticket_events import Measure, fold, moves_deadlines
from services.escalation.metrics import TIME_TO_FIRST_RESPONSE, TIME_TO_RESOLUTION
from services.escalation.sla_deadlines import deadlines_changed

log = get_logger("services.escalation.handlers")
_level = logging.getLogger("services.escalation.handlers")  # the stdlib logger behind ``log``: asked for its level


class TicketEventHandler:
    def __init__(
        self, store: DeadlineStore, policy: EscalationPolicy, clock: Clock, publisher: Publisher | None = None
    ) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock
        self._publisher = publisher  # None: deadlines are stored but not published (benchmarks of the store)

    async def __call__(self, deliveries: Sequence[Delivery[Any]]) -> None:
        events = [d.message for d in deliveries if moves_deadlines(d.message)]
        if not events:
            return
        for event in events:
            if event.ticket_id is None:
                raise PoisonMessage(f"{event.type} {event.event_id} carries no ticket_id")
        now = self._clock.now()
        async with self._store.changes() as changes:
            fresh = _not_yet_applied(events, await changes.seen({e.event_id for e in events}))
            if not fresh:
                return  # all redelivered
            known = await changes.deadlines({e.ticket_id for e in fresh})
            measures: list[Measure] = []
            changed = fold(known, fresh, self._policy, measures)
            await changes.save(changed.values(), now)
            await changes.mark_processed((e.event_id for e in fresh), now)
            await changes.record_measures(measures)
            # Published before the commit: a crash after it redelivers the batch, which republishes
            # the same ids; published after it, a crash in between would lose the message.
            await self._publish(changed, fresh, now)
        _log_changes(changed.values())
        _observe(measures)  # after the commit: a batch that rolled back is retried and measured then


    async def _publish(self, changed: dict[uuid.UUID, Deadline], fresh: Sequence[Envelope[Any]], now: Any) -> None:
        if self._publisher is None or not changed:
            return
        last_cause = {e.ticket_id: e.event_id for e in fresh}
        await self._publisher.publish_all(
            [deadlines_changed(d, self._policy, last_cause[t], now) for t, d in changed.items()]
        )


def _observe(measures: Iterable[Measure]) -> None:
    for m in measures:
        histogram = TIME_TO_FIRST_RESPONSE if m.kind == "first_response" else TIME_TO_RESOLUTION
        histogram.labels(str(m.priority), m.queue).observe(m.seconds)


def _not_yet_applied(events: Iterable[Envelope[Any]], seen: set[uuid.UUID]) -> list[Envelope[Any]]:
    """The events in order, without those applied before or repeated within the batch."""
    done, fresh = set(seen), []
    for event in events:
        if event.event_id not in done:
            done.add(event.event_id)
            fresh.append(event)
    return fresh


def _log_changes(changed: Iterable[Deadline]) -> None:
    # Debug only: a line per ticket per batch was a fifth of the consumer's CPU, and the
    # deadlines API shows the same. The escalations themselves are logged by the timer.
    if not _level.isEnabledFor(logging.DEBUG):
        return
    for deadline in changed:
        with log_context(correlation_id=deadline.correlation_id, ticket_number=deadline.number):
            log.debug("deadline changed", at_level=deadline.level, state=deadline.state.value,
                     queue=deadline.queue, due_at=deadline.due_at.isoformat())
