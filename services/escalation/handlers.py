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
from runtime.logs import get_logger, log_context
from services.escalation.adapters.store import DeadlineStore
from services.escalation.clock import Clock
from services.escalation.domain import MOVES_DEADLINES, Deadline, EscalationPolicy, fold

log = get_logger("services.escalation.handlers")
_level = logging.getLogger("services.escalation.handlers")  # the stdlib logger behind ``log``: asked for its level


class TicketEventHandler:
    def __init__(self, store: DeadlineStore, policy: EscalationPolicy, clock: Clock) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock

    async def __call__(self, deliveries: Sequence[Delivery[Any]]) -> None:
        events = [d.message for d in deliveries if isinstance(d.message, MOVES_DEADLINES)]
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
            changed = fold(known, fresh, self._policy)
            await changes.save(changed.values(), now)
            await changes.mark_processed(e.event_id for e in fresh)
        _log_changes(changed.values())


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
