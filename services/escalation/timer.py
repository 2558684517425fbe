"""The timer: sends the escalations whose deadline has passed.

Each pass takes the due deadlines (at most a batch), publishes for each the
``command.escalate_ticket`` and the ``notification.requested`` for the level,
waits until Kafka has acknowledged all of them, and only then marks the
deadlines fired. A crash in between republishes the same messages with the
same ids (they name the ticket and the level), which the ticket service and
notify apply once: a ticket never reaches the same level twice.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from contracts.commands import EscalateTicket, EscalateTicketData
from contracts.notifications import NotificationRequested, NotificationRequestedData, Recipient
from contracts.topics import NOTIFICATION_REQUESTS, TICKET_COMMANDS_TOPIC
from runtime.kafka import Outgoing, Publisher
from runtime.logs import get_logger, log_context
from services.escalation.adapters.store import DeadlineStore
from services.escalation.clock import Clock
from services.escalation.domain import DeadlineState, Escalation, EscalationPolicy, escalation_due
from services.escalation.metrics import ESCALATIONS_FIRED, FIRE_LAG, OPEN_TIMERS

log = get_logger("services.escalation.timer")


class EscalationTimer:
    def __init__(
        self,
        store: DeadlineStore,
        publisher: Publisher,
        policy: EscalationPolicy,
        clock: Clock,
        *,
        interval_s: float,
        batch: int,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._policy = policy
        self._clock = clock
        self._interval_s = interval_s
        self._batch = batch

    async def run(self) -> None:
        """The worker loop: a pass, then a pause (none while a full batch shows more are waiting)."""
        while True:
            fired = await self.fire_due()
            OPEN_TIMERS.set(await self._store.pending_count())
            if fired < self._batch:
                await asyncio.sleep(self._interval_s)

    async def fire_due(self) -> int:
        """One pass: escalate every due deadline (up to a batch); the number taken."""
        now = self._clock.now()
        due = await self._store.due(now, self._batch)
        escalations = [e for d in due if (e := escalation_due(d, self._policy, now)) is not None]
        if escalations:
            await self._publisher.publish_all([m for e in escalations for m in _messages(e, now)])
            await self._store.mark([e.deadline for e in escalations], DeadlineState.FIRED, now)
        stranded = [d for d in due if self._policy.next_level(d.level) is None]
        if stranded:
            # Pending at what is now the top level (the levels file shrank): nowhere to go.
            await self._store.mark(stranded, DeadlineState.DONE, now)
        for escalation in escalations:
            _record(escalation, now)
        return len(due)


def _messages(escalation: Escalation, now: datetime) -> list[Outgoing]:
    deadline, level = escalation.deadline, escalation.to_level
    key = str(deadline.ticket_id)
    correlation_id = deadline.correlation_id or key
    command = EscalateTicket(
        event_id=escalation.command_id,
        ticket_id=deadline.ticket_id,
        occurred_at=now,
        correlation_id=correlation_id,
        data=EscalateTicketData(
            level=level.number, queue=level.queue or "", reason=escalation.reason, deadline=deadline.due_at
        ),
    )
    notification = NotificationRequested(
        event_id=escalation.notification_id,
        ticket_id=deadline.ticket_id,
        occurred_at=now,
        correlation_id=correlation_id,
        causation_id=str(escalation.command_id),
        data=NotificationRequestedData(
            number=deadline.number,
            recipient=Recipient(kind="level", id=level.name, email=level.email),
            method="email",
            template="ticket_escalated",
            subject=f"[{deadline.number}] escalated to {level.name}",
            context={
                "number": deadline.number,
                "level": str(level.number),
                "level_name": level.name,
                "queue": level.queue or "",
                "from_queue": deadline.queue or "",
                "from_level": str(deadline.level),
                "deadline": deadline.due_at.isoformat(),
                "reason": escalation.reason,
            },
        ),
    )
    return [Outgoing(TICKET_COMMANDS_TOPIC, command, key), Outgoing(NOTIFICATION_REQUESTS, notification, key)]


def _record(escalation: Escalation, now: datetime) -> None:
    deadline = escalation.deadline
    ESCALATIONS_FIRED.labels(str(escalation.to_level.number)).inc()
    FIRE_LAG.observe(max(0.0, (now - deadline.due_at).total_seconds()))
    with log_context(correlation_id=deadline.correlation_id, ticket_number=deadline.number):
        log.info("ticket escalated", to_level=escalation.to_level.number, queue=escalation.to_level.queue,
                 due_at=deadline.due_at.isoformat(), command_id=str(escalation.command_id))
