"""From ticket events to route commands.

Only ``ticket.opened`` concerns routing; every other ticket event is counted
and passed over. The command's id is derived from the opened event's id, so a
redelivered event sends the same command again and the ticket service applies
it once: routing keeps no database.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from contracts.tickets import TicketOpened
from contracts.topics import TICKET_COMMANDS_TOPIC
from runtime.consumer import Delivery, PoisonMessage
from runtime.kafka import Outgoing, Publisher
from runtime.logs import get_logger, log_context
from services.routing.domain import Decision, RoutingPolicy, TicketFacts, decide, route_command

DECISIONS = Counter(
    "helpdesk_routing_decisions_total", "Route commands sent, by priority and queue.", ["priority", "queue"]
)
RULES_FIRED = Counter(
    "helpdesk_routing_rules_fired_total",
    "Decisions by the rule that made them (kind: priority or queue; rule 'matrix'/'default' when none fired).",
    ["kind", "rule"],
)
EVENTS_IGNORED = Counter(
    "helpdesk_routing_events_ignored_total", "Ticket events that are not for routing, by type.", ["type"]
)

log = get_logger("routing.handlers")


class RouteNewTickets:
    """Decide priority and queue for every ticket opened in a batch; send all commands, then return."""

    def __init__(self, policy: RoutingPolicy, publisher: Publisher) -> None:
        self._policy = policy
        self._publisher = publisher

    async def __call__(self, deliveries: Sequence[Delivery[Any]]) -> None:
        now = datetime.now(UTC)
        outgoing: list[tuple[Outgoing, Decision, str]] = []
        ignored: Tally[str] = Tally()
        for delivery in deliveries:
            event = delivery.message
            if not isinstance(event, TicketOpened):
                ignored[event.type] += 1
                continue
            if event.ticket_id is None:
                raise PoisonMessage(f"ticket.opened {event.event_id} ({event.data.number}) has no ticket_id")
            decision = decide(self._policy, facts_of(event))
            command = route_command(event, decision, now)
            item = Outgoing(TICKET_COMMANDS_TOPIC, command, str(event.ticket_id))
            outgoing.append((item, decision, event.data.number))
        await self._publisher.publish_all([item for item, _, _ in outgoing])
        for event_type, n in ignored.items():
            EVENTS_IGNORED.labels(event_type).inc(n)
        for item, decision, number in outgoing:
            self._record(item, decision, number)

    @staticmethod
    def _record(item: Outgoing, decision: Decision, number: str) -> None:
        DECISIONS.labels(str(decision.priority), decision.queue).inc()
        RULES_FIRED.labels("priority", decision.priority_rule).inc()
        RULES_FIRED.labels("queue", decision.queue_rule).inc()
        with log_context(correlation_id=item.message.correlation_id, ticket_number=number):
            log.info(
                "ticket routed",
                priority=decision.priority,
                priority_rule=decision.priority_rule,
                queue=decision.queue,
                queue_rule=decision.queue_rule,
            )


def facts_of(opened: TicketOpened) -> TicketFacts:
    data = opened.data
    return TicketFacts(
        subject=data.subject,
        description=data.description,
        components=tuple(data.components),
        impact=data.impact,
        urgency=data.urgency,
        channel=data.channel.value,
        vip=data.customer.vip,
        department=data.customer.department,
    )
