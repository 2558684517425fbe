"""The timer: sends the warnings and escalations whose time has come.

Each pass takes the tickets with something due (at most a batch) and decides
for each what to send (``breaches.on_time``). It stores the decision first:
the deadlines with the warnings and breaches counted (a compare-and-set on
each row's revision) and, in the same transaction, the messages in the
outbox. Only then does it publish them, wait until Kafka has acknowledged
every one, and delete their outbox rows. So a breach is recorded as handled
before anything about it leaves, and:

- a row the consumer changed meanwhile (a claim, a ``ticket.escalated``) is
  not stored and nothing is sent for it: the next pass decides again from
  the consumer's version. A breach is never sent once, lost, then sent one
  level higher;
- a crash after storing leaves the messages in the outbox: the next process
  sends them on its first pass (and any replica after ``RESEND_AFTER``),
  with the same ids (they name the ticket and the level, or the warning),
  which the ticket service and notify apply once.

An escalation is ``command.escalate_ticket`` (the ticket moves to the level's
queue), then, when the level names an on-call agent, ``command.assign_ticket``
(the ticket lands in that agent's hands), then a ``notification.requested``
for the level's e-mail and one per contact of the level.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

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
from contracts.topics import ESCALATION_COMMANDS, NOTIFICATION_REQUESTS
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

RESEND_AFTER = timedelta(seconds=30)
"""Outbox rows older than this are sent again by any pass: their pass failed or its process died."""


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
        self._resumed = False  # the first pass sends everything left in the outbox

    async def run(self) -> None:
        """The worker loop: a pass, then a pause (none while a full batch stored shows more are waiting)."""
        while True:
            stored = await self.fire_due()
            OPEN_TIMERS.set(await self._store.pending_count())
            if stored < self._batch:  # rows taken but not stored (moved by the consumer) wait for the next pass
                await asyncio.sleep(self._interval_s)

    async def fire_due(self) -> int:
        """One pass: send every warning and escalation due (up to a batch of tickets); the number stored."""
        await self.send_unsent()
        now = self._clock.now()
        due = await self._store.due(now, self._batch)
        steps = [step for step in (on_time(d, self._policy, now) for d in due) if step.after != step.before]
        decided = {step.before.ticket_id: self._messages(step, now) for step in steps}
        breaches = {step.before.ticket_id: step.breaches for step in steps if step.breached}
        stored = await self._store.settle([(s.before, s.after) for s in steps], now, decided, breaches)
        await self._send([m for ticket_id in stored for m in decided[ticket_id]])
        for step in steps:
            if step.before.ticket_id in stored:  # a step the consumer overtook is neither sent nor counted
                _record(step, now)
        return len(stored)

    async def send_unsent(self) -> int:
        """Send what a failed pass left in the outbox: all of it on this process's first pass (the one
        before crashed), later only what is older than ``RESEND_AFTER`` (a replica's pass may be sending it)."""
        stored_before = None if not self._resumed else self._clock.now() - RESEND_AFTER
        self._resumed = True
        unsent = await self._store.unsent(stored_before)
        if unsent:
            log.info("sending what a failed pass stored", messages=len(unsent))
            await self._send(unsent)
        return len(unsent)

    async def _send(self, messages: list[Outgoing]) -> None:
        if messages:
            await self._publisher.publish_all(messages)
            await self._store.sent([m.message.event_id for m in messages])

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
            level=level.number,
            queue=escalation.to_queue,
            reason=escalation.reason,
            deadline=escalation.due_at,
            targets=[target.value for target in escalation.targets],
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

    out = [Outgoing(ESCALATION_COMMANDS, command, key)]
    if level.agent is not None:
        # After the escalation, on the same partition: the ticket is in the level's queue, then in the agent's hands.
        assign = AssignTicket(
            event_id=assign_command_id(deadline.ticket_id, level.number), ticket_id=deadline.ticket_id,
            occurred_at=now, correlation_id=correlation_id, causation_id=str(escalation.command_id),
            data=AssignTicketData(agent_id=level.agent, strategy="direct",
                                  reason=f"on-call agent of {level.name}: {escalation.reason}"),
        )
        out.append(Outgoing(ESCALATION_COMMANDS, assign, key))
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
