"""Wiring: the rules file and the ticket-events consumer."""

from __future__ import annotations

import services.routing
from contracts.tickets import TICKET_EVENTS
from contracts.topics import TICKET_EVENTS_TOPIC
from runtime.logs import get_logger
from runtime.service import Service
from runtime.settings import CommonSettings
from services.routing.adapters.rules_file import load_rules
from services.routing.config import Settings
from services.routing.handlers import RouteNewTickets

log = get_logger("routing")


def build(common: CommonSettings, settings: Settings) -> Service:
    """The routing service; raises RulesFileError (naming file and line) if the rules are invalid."""
    policy = load_rules(settings.rules_file)
    service = Service("routing", common, settings, description=(services.routing.__doc__ or "").strip())
    # Every ticket event is accepted (and all but ticket.opened passed over), so none is dead-lettered.
    service.subscribe(
        TICKET_EVENTS_TOPIC, RouteNewTickets(policy, service.publisher), accepts=TICKET_EVENTS, group="helpdesk-routing"
    )

    async def announce() -> None:
        log.info(
            "routing rules loaded",
            file=str(settings.rules_file),
            priority_rules=len(policy.priority_rules),
            queue_rules=len(policy.queue_rules),
        )

    service.on_startup(announce)
    return service
