"""Ticket events in, deadlines out: the consumer of the ticket events topic.

Every event of a batch is applied in one transaction together with its
``processed_events`` row, so a redelivered batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runtime.consumer import Delivery, PoisonMessage
from runtime.logs import get_logger, log_context
from services.escalation.adapters.store import DeadlineStore
from services.escalation.clock import Clock
from services.escalation.domain import EscalationPolicy, apply

log = get_logger("services.escalation.handlers")


class TicketEventHandler:
    def __init__(self, store: DeadlineStore, policy: EscalationPolicy, clock: Clock) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock

    async def __call__(self, deliveries: Sequence[Delivery[Any]]) -> None:
        now = self._clock.now()
        async with self._store.changes() as changes:
            done: set[Any] = set()
            for delivery in deliveries:
                event = delivery.message
                if event.event_id in done or await changes.seen(event.event_id):
                    continue  # redelivered: already applied
                if event.ticket_id is None:
                    raise PoisonMessage(f"{event.type} {event.event_id} carries no ticket_id")
                current = await changes.get(event.ticket_id)
                changed = apply(current, event, self._policy)
                if changed is not None:
                    await changes.save(changed, existed=current is not None, now=now)
                    with log_context(correlation_id=event.correlation_id, ticket_number=changed.number):
                        log.info("deadline changed", event_type=event.type, at_level=changed.level,
                                 state=changed.state.value, due_at=changed.due_at.isoformat())
                await changes.mark_processed(event.event_id)
                done.add(event.event_id)
