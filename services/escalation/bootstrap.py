"""Wiring: the levels and SLA policies files, the store, the consumer, the timer and the HTTP API."""

from __future__ import annotations

from datetime import timedelta

from contracts.tickets import TICKET_EVENTS
from contracts.topics import TICKET_EVENTS_TOPIC
from runtime.auth import AuthSettings
from runtime.service import Service
from runtime.settings import CommonSettings
from services.escalation.adapters.store import DeadlineStore
from services.escalation.api import deadlines_router
from services.escalation.clock import Clock, SystemClock
from services.escalation.config import Settings
from services.escalation.domain.policy import EscalationPolicy
from services.escalation.handlers import TicketEventHandler
from services.escalation.levels import load_levels
from services.escalation.policies_file import load_policies
from services.escalation.retention import ProcessedEventsRetention
from services.escalation.timer import EscalationTimer

DESCRIPTION = (
    "Holds every open ticket to its SLA targets (first response, next update, resolution), warns its level, "
    "and escalates it to the next level, and that level's on-call agent, when a target passes."
)


def escalation_policy(settings: Settings) -> EscalationPolicy:
    """The levels and SLA policies files, read and checked (ConfigError names the file and line)."""
    override = timedelta(seconds=settings.unclaimed_after_s) if settings.unclaimed_after_s else None
    return EscalationPolicy(load_levels(settings.levels_file), override, load_policies(settings.policies_file))


def build(
    common: CommonSettings, settings: Settings, *, clock: Clock | None = None, auth: AuthSettings | None = None
) -> Service:
    clock = clock or SystemClock()
    policy = escalation_policy(settings)
    service = Service("escalation", common, settings, description=DESCRIPTION)
    service.require_credentials(auth=auth)
    store = DeadlineStore(settings.database_url)
    service.on_startup(store.create_schema)
    service.on_shutdown(store.close)
    service.readiness.add("database", store.ready)
    # Every ticket event arrives on this topic; the handler ignores those that move no deadline.
    service.subscribe(TICKET_EVENTS_TOPIC, TicketEventHandler(store, policy, clock, service.publisher), accepts=TICKET_EVENTS)
    timer = EscalationTimer(
        store, service.publisher, policy, clock, interval_s=settings.timer_interval_s, batch=settings.timer_batch
    )
    service.add_worker("escalation-timer", timer.run)
    retention = ProcessedEventsRetention(
        store, clock, retention=timedelta(seconds=settings.processed_events_retention_s),
        interval_s=settings.prune_interval_s,
    )
    service.add_worker("processed-events-retention", retention.run)
    service.app.include_router(deadlines_router(store, policy, clock))
    return service
