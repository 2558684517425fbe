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
import uuid
from dataclasses import replace
from datetime import datetime

from contracts.commands import EscalateTicket, EscalateTicketData
from contracts.notifications import (
    Method,
    NotificationRequested,
    NotificationRequestedData,
    Recipient,
)
from contracts.topics import NOTIFICATION_REQUESTS, TICKET_COMMANDS_TOPIC
from runtime.kafka import Outgoing, Publisher
from runtime.logs import get_logger, log_context
from services.escalation.adapters.store import DeadlineStore
from services.escalation.clock import Clock
from services.escalation.domain import (
    DeadlineState,
    Escalation,
    EscalationPolicy,
    Warning,
    contact_notification_id,
    escalation_due,
    warning_due,
)
from services.escalation.metrics import (
    BREACHES,
    ESCALATIONS_FIRED,
    FIRE_LAG,
    OPEN_TIMERS,
    WARNINGS_SENT,
)
from services.escalation.sla_deadlines import deadlines_changed

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
            messages = [m for e in escalations for m in escalation_messages(e, now)]
            breached = [replace(e.deadline, state=DeadlineState.FIRED) for e in escalations]
            messages += [deadlines_changed(d, self._policy, e.command_id, now) for d, e in zip(breached, escalations)]
            await self._publisher.publish_all(messages)
            await self._store.mark([e.deadline for e in escalations], DeadlineState.FIRED, now)
        await self._warn([w for d in due if (w := warning_due(d, self._policy, now)) is not None], now)
        stranded = [d for d in due if self._policy.next_level(d.level) is None and d.due_at <= now]
        if stranded:
            # Pending at what is now the top level (the levels file shrank): nowhere to go.
            await self._store.mark(stranded, DeadlineState.DONE, now)
        for escalation in escalations:
            _record(escalation, now)
        return len(due)

    async def _warn(self, warnings: list[Warning], now: datetime) -> None:
        """Tell each level its tickets passed a warning point, then count the warnings sent (same order as firing)."""
        if not warnings:
            return
        messages = [m for w in warnings for m in warning_messages(w, now)]
        messages += [deadlines_changed(w.after, self._policy, w.notification_id, now) for w in warnings]
        await self._publisher.publish_all(messages)
        await self._store.record_warnings([(w.deadline, w.after) for w in warnings], now)
        for warning in warnings:
            WARNINGS_SENT.labels(str(warning.level.number), str(warning.percent)).inc()


def escalation_messages(escalation: Escalation, now: datetime) -> list[Outgoing]:
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
    context = {
        "number": deadline.number,
        "level": str(level.number),
        "level_name": level.name,
        "queue": level.queue or "",
        "from_queue": deadline.queue or "",
        "from_level": str(deadline.level),
        "deadline": deadline.due_at.isoformat(),
        "reason": escalation.reason,
        "policy": deadline.policy or "",
    }

    def request(event_id: uuid.UUID, recipient: Recipient, method: Method) -> Outgoing:
        data = NotificationRequestedData(
            number=deadline.number, recipient=recipient, method=method, template="ticket_escalated",
            subject=f"[{deadline.number}] escalated to {level.name}", context=context,
        )
        message = NotificationRequested(event_id=event_id, ticket_id=deadline.ticket_id, occurred_at=now,
                                        correlation_id=correlation_id, causation_id=str(escalation.command_id),
                                        data=data)
        return Outgoing(NOTIFICATION_REQUESTS, message, key)

    out = [Outgoing(TICKET_COMMANDS_TOPIC, command, key),
           request(escalation.notification_id, Recipient(kind="level", id=level.name, email=level.email), "email")]
    for index, contact in enumerate(level.notify):
        # Each contact's id names the ticket, the level and the contact's place in the file: redelivery-stable.
        recipient = Recipient(kind="agent" if level.agent else "level", id=contact.id or level.agent or level.name,
                              email=contact.email, phone=contact.phone)
        out.append(request(contact_notification_id(deadline.ticket_id, level.number, index, contact.method),
                           recipient, contact.method))  # type: ignore[arg-type]
    return out


def warning_messages(warning: Warning, now: datetime) -> list[Outgoing]:
    """The warning to the level the ticket sits at: its e-mail and, after it, its other contacts."""
    deadline, level = warning.deadline, warning.level
    key = str(deadline.ticket_id)
    context = {
        "number": deadline.number, "level": str(level.number), "level_name": level.name,
        "queue": deadline.queue or "", "percent": str(warning.percent), "deadline": deadline.due_at.isoformat(),
        "policy": deadline.policy or "",
    }
    contacts = [(Recipient(kind="level", id=level.name, email=level.email), "email")] + [
        (Recipient(kind="agent" if level.agent else "level", id=c.id or level.agent or level.name, email=c.email,
                   phone=c.phone), c.method)
        for c in level.notify
    ]
    out = []
    for index, (recipient, method) in enumerate(contacts):
        event_id = warning.notification_id if index == 0 else uuid.uuid5(warning.notification_id, f"{index}:{method}")
        data = NotificationRequestedData(
            number=deadline.number, recipient=recipient, method=method, template="sla_warning",  # type: ignore[arg-type]
            subject=f"[{deadline.number}] {warning.percent}% of its response target used at {level.name}",
            context=context,
        )
        message = NotificationRequested(event_id=event_id, ticket_id=deadline.ticket_id, occurred_at=now,
                                        correlation_id=deadline.correlation_id or key, data=data)
        out.append(Outgoing(NOTIFICATION_REQUESTS, message, key))
    return out


def _record(escalation: Escalation, now: datetime) -> None:
    deadline = escalation.deadline
    ESCALATIONS_FIRED.labels(str(escalation.to_level.number)).inc()
    BREACHES.labels(str(deadline.priority), deadline.queue or "").inc()
    FIRE_LAG.observe(max(0.0, (now - deadline.due_at).total_seconds()))
    with log_context(correlation_id=deadline.correlation_id, ticket_number=deadline.number):
        log.info("ticket escalated", to_level=escalation.to_level.number, queue=escalation.to_level.queue,
                 due_at=deadline.due_at.isoformat(), command_id=str(escalation.command_id))
