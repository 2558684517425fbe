"""Batch handlers: identified incidents open tickets, commands change them, SLA deadlines are kept.

Each batch is one transaction: the events of every ticket it touches, the
read-model rows, and (for commands) the processed-command marks commit
together or not at all, and only then does the runtime commit the offsets.
Nothing is published from here; the relay publishes what was stored.

An incident that names the ticket it answers (``reply_to_number``) is recorded
on that ticket as ``ticket.customer_replied`` when the ticket is the same
customer's and still takes replies (a merged ticket's replies go to the ticket it
was merged into); otherwise it opens a ticket as any other.

Commands come on one topic per producer (routing's, escalation's, notify's):
Kafka's ACLs let only that producer write it, and a command type the producer
may not send (the topic's registry entry lists those it may) is refused:
dead-lettered (``dlt.kind`` ``forbidden``), never applied. The shared topic of
older releases, read until it is drained, takes every type.

Redelivery changes nothing. An incident's ticket id is derived from the
channel's own message id, so the same incident finds its ticket already open
(and a reply finds itself among the ticket's replies); a command's id is
remembered in ``processed_commands``, whatever the outcome, under a key of
its producer's topic: no producer can use up the id of another's command. A command the
ticket's rules reject (escalating a ticket to its own level, say) is recorded
as processed and logged, not retried and not dead-lettered: the message is
valid and was decided on; retrying would decide the same again. Dead letters
are for messages that cannot be decided on at all (a command for a ticket
that does not exist).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.commands import AssignTicket, EscalateTicket, FlagTicket, RouteTicket
from contracts.envelope import Envelope, message_type
from contracts.incidents import IncidentIdentified, IncidentIdentifiedData
from contracts.sla import SlaDeadlinesChanged
from contracts.topics import SHARED_COMMANDS, Topic
from runtime.consumer import Delivery, Handler, PoisonMessage
from runtime.logs import get_logger, log_context
from services.tickets.adapters import deadlines, event_store, repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.event_store import ConcurrencyConflict, ProcessedCommand
from services.tickets.adapters.refused_commands import RefusedCommands
from services.tickets.adapters.repository import Change
from services.tickets.domain import (
    Ticket,
    TicketEvent,
    TicketRuleViolation,
    open_ticket,
)
from services.tickets.metrics import COMMANDS, TICKETS_OPENED

log = get_logger("tickets.handlers")

# Fixed forever: changing it would open a second ticket for an incident seen before.
INCIDENT_NAMESPACE = uuid.UUID("5b0c1f57-3f0e-4a53-9d3b-8a4f1b2ce7d1")
# Fixed forever too: changing it would apply again every command a producer resends.
COMMAND_SCOPE_NAMESPACE = uuid.UUID("0d7f3c52-6a4e-4f0b-9b8e-2f5a7c1d9e63")
CONFLICT_ATTEMPTS = 3
MERGE_HOPS = 10  # merges into merged tickets are refused, so chains are short; this only bounds the walk

Appended = Callable[[], None]


def ticket_id_for(incident: IncidentIdentifiedData) -> uuid.UUID:
    """The ticket an incident opens: the same channel message always names the same ticket."""
    return uuid.uuid5(INCIDENT_NAMESPACE, incident.partition_key)


def open_tickets(db: TicketDatabase, appended: Appended) -> Handler:
    """Open a ticket per new incident, or record it on the ticket it replies to."""

    async def handle(batch: Sequence[Delivery[IncidentIdentified]]) -> None:
        incidents: dict[uuid.UUID, IncidentIdentified] = {}
        for delivery in batch:
            incidents.setdefault(ticket_id_for(delivery.message.data), delivery.message)
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                opened, replied, numbers = await _open_or_reply(db, incidents)
                break
            except ConcurrencyConflict:
                # An agent changed a replied-to ticket meanwhile: decide again on what is stored now.
                if attempt == CONFLICT_ATTEMPTS:
                    raise
                log.info("a ticket changed during the batch, deciding again", attempt=attempt)
        if opened or replied:
            appended()
        for incident in opened:
            TICKETS_OPENED.labels(incident.data.channel.value).inc()
        # One line per batch, not per ticket: at a thousand incidents a second, logging would cost more than storing.
        log.info(
            "tickets opened",
            opened=len(opened),
            replies=replied,
            already_recorded=len(incidents) - len(opened) - replied,
            numbers=_span(sorted(numbers, key=lambda n: int(n[3:]))),
        )

    return handle


async def _open_or_reply(
    db: TicketDatabase, incidents: dict[uuid.UUID, IncidentIdentified]
) -> tuple[list[IncidentIdentified], int, list[str]]:
    """One transaction: the new tickets, and the replies on the tickets they answer.

    Returns the incidents that opened tickets, how many replies were recorded, and the new numbers.
    """
    now = datetime.now(UTC)
    async with db.writer.begin() as conn:
        known = await event_store.known_tickets(conn, incidents)
        new = {t: m for t, m in incidents.items() if t not in known}
        replies, replied_to = await _replies(conn, new)
        new = {t: m for t, m in new.items() if t not in replies}
        numbers = await event_store.allocate_numbers(conn, list(new))
        changes = [
            Change.of(None, repository.recorded(t, [open_ticket(numbers[t], m.data)], at=now, cause=m))
            for t, m in new.items()
        ]
        recorded = 0
        for ticket_id, before in replied_to.items():
            ticket, events = before, []
            for message in _replies_to(replies, ticket_id):
                decided = ticket.record_reply(
                    channel=message.data.channel,
                    channel_message_id=message.data.channel_message_id,
                    received_at=message.data.received_at,
                    text=message.data.description,
                    attachments=message.data.attachments,
                )
                ticket = ticket.applied(decided)
                events += repository.recorded(ticket_id, decided, at=now, cause=message)
            recorded += len(events)
            changes.append(Change(before.version, events, ticket))
        await repository.save(conn, changes)
    return list(new.values()), recorded, list(numbers.values())


def _replies_to(
    replies: dict[uuid.UUID, tuple[uuid.UUID, IncidentIdentified]], ticket_id: uuid.UUID
) -> list[IncidentIdentified]:
    return [message for target, message in replies.values() if target == ticket_id]


async def _replies(
    conn: AsyncConnection, new: dict[uuid.UUID, IncidentIdentified]
) -> tuple[dict[uuid.UUID, tuple[uuid.UUID, IncidentIdentified]], dict[uuid.UUID, Ticket]]:
    """The incidents that answer an existing ticket of the same customer which still takes replies.

    Returns {incident's own ticket id: (replied-to ticket id, incident)} and the replied-to tickets.
    Any other incident (no such ticket, someone else's, closed) opens a ticket of its own.
    """
    wanted: dict[uuid.UUID, uuid.UUID] = {}
    for own_id, message in new.items():
        number = message.data.reply_to_number
        target = await event_store.ticket_id_for_number(conn, number) if number else None
        if target is not None:
            wanted[own_id] = target
    tickets = await repository.load_tickets(conn, list(set(wanted.values())))
    await _follow_merges(conn, wanted, tickets, new)
    replies = {
        own_id: (target, new[own_id])
        for own_id, target in wanted.items()
        if target in tickets and _takes_reply(tickets[target], new[own_id].data)
    }
    return replies, {t: tickets[t] for t in {target for target, _ in replies.values()}}


async def _follow_merges(
    conn: AsyncConnection,
    wanted: dict[uuid.UUID, uuid.UUID],
    tickets: dict[uuid.UUID, Ticket],
    new: dict[uuid.UUID, IncidentIdentified],
) -> None:
    """Point replies to a merged ticket at the ticket it was merged into (following a chain of merges).

    The customer answers the mail they have, which names the old number; the work
    goes on in the other ticket. A reply the merged ticket recorded before the merge
    stays where it is (a redelivery is recognised there).
    """
    for _hop in range(MERGE_HOPS):
        onward = {
            own_id: ticket.merged_into.ticket_id
            for own_id, target in wanted.items()
            if (ticket := tickets.get(target)) is not None
            and ticket.merged_into is not None
            and (new[own_id].data.channel.value, new[own_id].data.channel_message_id) not in ticket.replies
        }
        if not onward:
            return
        wanted.update(onward)
        unseen = [t for t in set(onward.values()) if t not in tickets]
        tickets.update(await repository.load_tickets(conn, unseen))


def _takes_reply(ticket: Ticket, incident: IncidentIdentifiedData) -> bool:
    # A reply already recorded is recognised whatever became of the ticket since (redelivery records nothing new).
    if (incident.channel.value, incident.channel_message_id) in ticket.replies:
        return True
    return ticket.accepts_reply() and ticket.belongs_to(incident.customer)


def _span(numbers: list[str]) -> str | None:
    return None if not numbers else numbers[0] if len(numbers) == 1 else f"{numbers[0]}..{numbers[-1]}"


def apply_commands(
    db: TicketDatabase,
    appended: Appended,
    *,
    sent_on: Topic = SHARED_COMMANDS,
    refused: RefusedCommands | None = None,
) -> Handler:
    """Apply the commands of the topic ``sent_on``, refusing (to ``refused``) the types its producer may not send."""
    allowed = frozenset(message_type(m) for m in sent_on.messages)
    scope = None if sent_on is SHARED_COMMANDS else sent_on.name

    async def handle(batch: Sequence[Delivery[Envelope[Any]]]) -> None:
        forbidden = [(d, _why_forbidden(d, allowed)) for d in batch if d.message.type not in allowed]
        if forbidden and refused is None:
            raise PoisonMessage(forbidden[0][1])
        commands = list({d.message.event_id: d.message for d in batch if d.message.type in allowed}.values())
        if commands:
            await apply(commands)
        if forbidden and refused is not None:
            # After the allowed ones are stored: a failure here retries a batch whose commands are then duplicates.
            await refused.set_aside(forbidden)
            for delivery, _why in forbidden:
                COMMANDS.labels(delivery.message.type, "forbidden").inc()

    async def apply(commands: list[Envelope[Any]]) -> None:
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                outcomes, recorded_any = await _apply(db, commands, scope)
                break
            except ConcurrencyConflict:
                # An agent changed one of the tickets meanwhile: decide again on what is stored now.
                if attempt == CONFLICT_ATTEMPTS:
                    raise
                log.info("a ticket changed during the batch, deciding again", attempt=attempt)
        if recorded_any:
            appended()
        for command_type, outcome in outcomes:
            COMMANDS.labels(command_type, outcome).inc()

    return handle


def _why_forbidden(delivery: Delivery[Envelope[Any]], allowed: frozenset[str]) -> str:
    return (
        f"forbidden: {delivery.message.type} may not be sent on {delivery.topic} "
        f"(its producer may send {', '.join(sorted(allowed))})"
    )


def _command_key(command: Envelope[Any], scope: str | None) -> uuid.UUID:
    """The key a command is remembered under: its id within its producer's topic.

    Senders derive command ids from their causes, which another producer could
    work out; were ids shared, a command sent first by the wrong producer (refused or
    not) would make the right one's look like a duplicate. The shared topic of older
    releases keeps the bare ids it always used.
    """
    return command.event_id if scope is None else uuid.uuid5(COMMAND_SCOPE_NAMESPACE, f"{scope}:{command.event_id}")


async def _apply(
    db: TicketDatabase, commands: list[Envelope[Any]], scope: str | None
) -> tuple[list[tuple[str, str]], bool]:
    """Decide every new command in order; returns (type, outcome) per command and whether events were stored."""
    now = datetime.now(UTC)
    async with db.writer.begin() as conn:
        seen = await event_store.processed(conn, [_command_key(c, scope) for c in commands])
        todo = [c for c in commands if _command_key(c, scope) not in seen]
        stored = await repository.load_tickets(conn, [_ticket_of(c) for c in todo])
        tickets = dict(stored)  # each ticket as the batch's decisions so far left it
        pending: dict[uuid.UUID, list[Envelope[Any]]] = {t: [] for t in stored}
        marks, outcomes = [], [(c.type, "duplicate") for c in commands if _command_key(c, scope) in seen]
        for command in todo:
            ticket_id = _ticket_of(command)
            if ticket_id not in tickets:
                raise PoisonMessage(f"{command.type} {command.event_id} is for unknown ticket {ticket_id}")
            outcome, events = _decide(tickets[ticket_id], command)
            pending[ticket_id] += repository.recorded(ticket_id, events, at=now, cause=command)
            tickets[ticket_id] = tickets[ticket_id].applied(events)
            marks.append(ProcessedCommand(_command_key(command, scope), ticket_id, outcome))
            outcomes.append((command.type, outcome.partition(":")[0]))
        changes = [Change(stored[t].version, events, tickets[t]) for t, events in pending.items() if events]
        await repository.save(conn, changes)
        await event_store.mark_processed(conn, marks, now)
    return outcomes, bool(changes)


def _ticket_of(command: Envelope[Any]) -> uuid.UUID:
    if command.ticket_id is None:
        raise PoisonMessage(f"{command.type} {command.event_id} names no ticket_id")
    return command.ticket_id


def _decide(ticket: Ticket, command: Envelope[Any]) -> tuple[str, list[TicketEvent]]:
    """The command's events and its outcome: applied, unchanged or rejected:<rule>."""
    try:
        events = _events_for(ticket, command)
    except TicketRuleViolation as violation:
        with log_context(correlation_id=command.correlation_id, ticket_number=ticket.number):
            log.warning(
                "command rejected by the ticket's rules",
                command=command.type,
                command_id=str(command.event_id),
                rule=violation.rule,
                reason=violation.message,
            )
        return f"rejected:{violation.rule}", []
    return ("applied" if events else "unchanged"), events


def _events_for(ticket: Ticket, command: Envelope[Any]) -> list[TicketEvent]:
    match command:
        case RouteTicket(data=d):
            return ticket.route(
                priority=d.priority,
                priority_rule=d.priority_rule,
                priority_reason=d.priority_reason,
                queue=d.queue,
                queue_rule=d.queue_rule,
                queue_reason=d.queue_reason,
            )
        case EscalateTicket(data=d):
            owned_too = any(target != "first_response" for target in d.targets)
            return ticket.escalate(level=d.level, queue=d.queue, reason=d.reason, owned_too=owned_too)
        case AssignTicket(data=d):
            return ticket.assign(d.agent_id, strategy=d.strategy, reason=d.reason)
        case FlagTicket(data=d):
            return ticket.flag(d.flag, reason=d.reason, raised_by=d.raised_by)
    raise PoisonMessage(f"the ticket service does not handle {command.type}")


def record_deadlines(db: TicketDatabase) -> Handler:
    """Keep each ticket's SLA deadlines as escalation last published them (for the query API)."""

    async def handle(batch: Sequence[Delivery[SlaDeadlinesChanged]]) -> None:
        messages = [d.message for d in batch]
        for message in messages:
            if message.ticket_id is None:
                raise PoisonMessage(f"{message.type} {message.event_id} names no ticket_id")
        async with db.writer.begin() as conn:
            written = await deadlines.record(conn, messages)
        log.info("deadlines recorded", tickets=written, messages=len(messages))

    return handle
