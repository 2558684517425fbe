"""The timer: sends the warnings and escalations whose time has come.

Each pass takes the tickets with something due (at most a batch), decides for
each what to send (``breaches.on_time``), publishes it all, waits until Kafka
has acknowledged every message, and only then stores the tickets' deadlines
with the warnings and breaches counted. A crash in between republishes the
same messages with the same ids (they name the ticket and the level, or the
warning), which the ticket service and notify apply once: a ticket never
reaches the same level twice.

An escalation is ``command.escalate_ticket`` (the ticket moves to the level's
queue), then, when the level names an on-call agent, ``command.assign_ticket``
(the ticket lands in that agent's hands), then a ``notification.requested``
for the level's e-mail and one per contact of the level.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from contracts.commands import (
    AssignTicket,
    AssignTicketData,
    EscalateTicket,
    EscalateTicketData,
)
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
from services.escalation.domain.breaches import Escalation, Step, Warning, on_time
from services.escalation.domain.message_ids import (
    assign_command_id,
    breach_id,
    contact_notification_id,
)
from services.escalation.domain.policy import EscalationPolicy, Target
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
            taken = await self.fire_due()
            OPEN_TIMERS.set(await self._store.pending_count())
            if taken < self._batch:
                await asyncio.sleep(self._interval_s)

    async def fire_due(self) -> int:
        """One pass: send every warning and escalation due (up to a batch of tickets); the number taken."""
        now = self._clock.now()
        due = await self._store.due(now, self._batch)
        steps = [on_time(d, self._policy, now) for d in due]
        messages = [m for step in steps for m in self._messages(step, now)]
        if messages:
            await self._publisher.publish_all(messages)
        # Stored only once Kafka has them all (a step that changes nothing is not written).
        await self._store.settle([(s.before, s.after) for s in steps if s.after != s.before], now)
        for step in steps:
            _record(step, now)
        return len(due)

    def _messages(self, step: Step, now: datetime) -> list[Outgoing]:
        out = [m for w in step.warnings for m in warning_messages(w, now)]
        if step.escalation is not None:
            out += escalation_messages(step.escalation, now)
        if step.escalation is not None:
            cause = step.escalation.command_id
        elif step.warnings:
            cause = step.warnings[-1].notification_id
        elif step.breached:  # at the top level: nothing to send but the breach itself
            cause = breach_id(step.before.ticket_id, step.breached, step.before.revision)
        else:
            return out
        out.append(deadlines_changed(step.after, self._policy, cause, now))
        return out


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
            level=level.number, queue=escalation.to_queue, reason=escalation.reason, deadline=escalation.due_at
        ),
    )
    context = {
        "number": deadline.number,
        "level": str(level.number),
        "level_name": level.name,
        "queue": escalation.to_queue,
        "from_queue": deadline.queue or "",
        "from_level": str(deadline.level),
        "deadline": escalation.due_at.isoformat(),
        "reason": escalation.reason,
        "policy": deadline.policy or "",
        "target": ", ".join(escalation.targets),
        "agent": level.agent or "",
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

    out = [Outgoing(TICKET_COMMANDS_TOPIC, command, key)]
    if level.agent is not None:
        # After the escalation, on the same partition: the ticket is in the level's queue, then in the agent's hands.
        assign = AssignTicket(
            event_id=assign_command_id(deadline.ticket_id, level.number), ticket_id=deadline.ticket_id,
            occurred_at=now, correlation_id=correlation_id, causation_id=str(escalation.command_id),
            data=AssignTicketData(agent_id=level.agent, strategy="direct",
                                  reason=f"on-call agent of {level.name}: {escalation.reason}"),
        )
        out.append(Outgoing(TICKET_COMMANDS_TOPIC, assign, key))
    out.append(
        request(escalation.notification_id, Recipient(kind="level", id=level.name, email=level.email), "email")
    )
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
        "queue": deadline.queue or "", "percent": str(warning.percent), "deadline": warning.due_at.isoformat(),
        "policy": deadline.policy or "", "target": warning.target.value,
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
            subject=f"[{deadline.number}] {warning.percent}% of its {_SPOKEN[warning.target]} target used at {level.name}",
            context=context,
        )
        message = NotificationRequested(event_id=event_id, ticket_id=deadline.ticket_id, occurred_at=now,
                                        correlation_id=deadline.correlation_id or key, data=data)
        out.append(Outgoing(NOTIFICATION_REQUESTS, message, key))
    return out


_SPOKEN = {Target.FIRST_RESPONSE: "response", Target.NEXT_UPDATE: "next-update", Target.RESOLUTION: "resolution"}


def _record(step: Step, now: datetime) -> None:
    deadline = step.before
    for warning in step.warnings:
        WARNINGS_SENT.labels(str(warning.level.number), str(warning.percent)).inc()
    for target in step.breached:
        BREACHES.labels(str(deadline.priority), deadline.queue or "", target.value).inc()
    escalation = step.escalation
    if escalation is None:
        return
    ESCALATIONS_FIRED.labels(str(escalation.to_level.number)).inc()
    FIRE_LAG.observe(max(0.0, (now - escalation.due_at).total_seconds()))
    with log_context(correlation_id=deadline.correlation_id, ticket_number=deadline.number):
        log.info("ticket escalated", to_level=escalation.to_level.number, queue=escalation.to_queue,
                 agent=escalation.to_level.agent, targets=",".join(escalation.targets),
                 due_at=escalation.due_at.isoformat(), command_id=str(escalation.command_id))
