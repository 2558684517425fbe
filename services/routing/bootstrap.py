"""Wiring: the rules (watched), the agents file, the store, the ticket-events consumer, the API."""

from __future__ import annotations

import services.routing
from contracts.tickets import TICKET_EVENTS
from contracts.topics import TICKET_EVENTS_TOPIC
from runtime.logs import get_logger
from runtime.auth import AuthSettings
from runtime.service import Service
from runtime.settings import CommonSettings
from services.routing.adapters.agents_file import load_agents
from services.routing.adapters.rules_file import KnownAgents
from services.routing.adapters.store import RoutingStore
from services.routing.api import routing_router
from services.routing.config import Settings
from services.routing.handlers import RouteTickets
from services.routing.reload import RulesInForce

log = get_logger("routing")


def build(common: CommonSettings, settings: Settings, *, auth: AuthSettings | None = None) -> Service:
    """The routing service; raises RulesFileError / AgentsFileError (naming file and line) if a file is invalid."""
    roster = load_agents(settings.agents_file) if settings.agents_file else []
    rules = RulesInForce(settings.rules_file, KnownAgents({a.agent_id for a in roster}, settings.agents_file))
    store = RoutingStore(settings.database_url)
    service = Service("routing", common, settings, description=(services.routing.__doc__ or "").strip())
    service.require_credentials(auth=auth)

    async def start() -> None:
        await store.create_schema()
        await store.put_agents(roster, keep_availability=True)
        log.info("routing rules loaded", file=str(settings.rules_file), agents=len(roster), **rules.counts())

    service.on_startup(start)
    service.on_shutdown(store.close)
    service.readiness.add("database", store.ready)
    # Every ticket event is accepted (those that are not routing's business are passed over), so none is dead-lettered.
    service.subscribe(
        TICKET_EVENTS_TOPIC,
        RouteTickets(rules, store, service.publisher),
        accepts=TICKET_EVENTS,
        group="helpdesk-routing",
    )
    service.add_worker("rules-reload", lambda: rules.watch(settings.reload_interval_s))
    service.app.include_router(routing_router(store, rules))
    return service
