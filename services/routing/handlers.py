"""From ticket events to route and assign commands, one batch at a time.

In one transaction of routing's store: skip the events already applied, read
the batch's tickets, the agents, their loads and the round-robin cursors;
let the :class:`~services.routing.desk.Desk` fold the events; send its
commands (and wait for Kafka's acknowledgement); then save the views, the
explanations and the applied event ids. A failure anywhere rolls back, and a
redelivery decides again from the same state, so it sends the same command
ids (derived from the causing event), which the ticket service applies once.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from contracts.commands import RouteTicket
from contracts.tickets import (
    TicketCustomerReplied,
    TicketEscalated,
    TicketOpened,
    TicketPrioritised,
)
from contracts.topics import ROUTING_COMMANDS
from runtime.consumer import Delivery, PoisonMessage
from runtime.kafka import Outgoing, Publisher
from runtime.logs import get_logger, log_context
from services.routing.adapters.store import RoutingStore
from services.routing.assignment import Roster
from services.routing.desk import Desk, Explanation
from services.routing.reload import RulesInForce

DECISIONS = Counter(
    "helpdesk_routing_decisions_total", "Route commands sent, by priority and queue.", ["priority", "queue"]
)
RULES_FIRED = Counter(
    "helpdesk_routing_rules_fired_total",
    "Decisions by the rule that made them (kind: priority or queue; rule 'matrix'/'default' when none fired).",
    ["kind", "rule"],
)
ASSIGNMENTS = Counter("helpdesk_routing_assignments_total", "Assign commands sent, by strategy.", ["strategy"])
EVENTS_IGNORED = Counter(
    "helpdesk_routing_events_ignored_total", "Ticket events that are not for routing, by type.", ["type"]
)

log = get_logger("routing.handlers")

# The events upon which routing decides (and may assign); the others only update what it knows.
DECIDING = (TicketOpened, TicketCustomerReplied, TicketEscalated, TicketPrioritised)


class RouteTickets:
    """Apply a batch of ticket events: decide, reconsider, assign; send all commands, then commit."""

    def __init__(self, rules: RulesInForce, store: RoutingStore, publisher: Publisher) -> None:
        self._rules = rules
        self._store = store
        self._publisher = publisher

    async def __call__(self, deliveries: Sequence[Delivery[Any]]) -> None:
        now = datetime.now(UTC)
        for delivery in deliveries:
            event = delivery.message
            if isinstance(event, TicketOpened) and event.ticket_id is None:
                raise PoisonMessage(f"ticket.opened {event.event_id} ({event.data.number}) has no ticket_id")
        async with self._store.changes() as tx:
            seen = await tx.seen({d.message.event_id for d in deliveries})
            fresh = _unique([d.message for d in deliveries if d.message.event_id not in seen])
            if not fresh:
                return
            views = await tx.views({e.ticket_id for e in fresh if e.ticket_id is not None})
            # Agents, loads and cursors only matter to a batch that may assign (loads are kept in the views).
            may_assign = any(isinstance(e, DECIDING) for e in fresh)
            roster = Roster(await tx.agents(), await tx.loads(), await tx.cursors()) if may_assign else Roster({})
            cursors_before = dict(roster.last_given)
            desk = Desk(self._rules.policy, roster, views, now)
            for event in fresh:
                desk.apply(event)
            outgoing = [Outgoing(ROUTING_COMMANDS, c, str(c.ticket_id)) for c in desk.commands]
            await self._publisher.publish_all(outgoing)
            moved = {q: a for q, a in roster.last_given.items() if cursors_before.get(q) != a}
            await tx.save([views[t] for t in desk.changed], desk.explanations, moved, [e.event_id for e in fresh], now)
        _record(desk, Tally(desk.passed_over))


def _unique(events: list[Any]) -> list[Any]:
    """A batch may hold one event twice (a producer's retry): apply it once."""
    seen: set[Any] = set()
    out = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            out.append(event)
    return out


def _record(desk: Desk, ignored: Tally[str]) -> None:
    for event_type, n in ignored.items():
        EVENTS_IGNORED.labels(event_type).inc(n)
    for command in desk.commands:
        if isinstance(command, RouteTicket):
            data = command.data
            DECISIONS.labels(str(data.priority), data.queue).inc()
            RULES_FIRED.labels("priority", data.priority_rule).inc()
            RULES_FIRED.labels("queue", data.queue_rule).inc()
        else:
            ASSIGNMENTS.labels(command.data.strategy).inc()
    for explanation in desk.explanations:
        _log(explanation, desk.views[explanation.ticket_id].number)


def _log(explanation: Explanation, number: str) -> None:
    d = explanation.decision
    with log_context(ticket_number=number):
        log.info(
            "ticket routed" if explanation.cause == "ticket.opened" else "ticket reconsidered",
            priority=d.priority,
            priority_rule=d.priority_rule,
            queue=d.queue,
            queue_rule=d.queue_rule,
            notes=list(explanation.notes),
            command_sent=explanation.command_sent,
        )
