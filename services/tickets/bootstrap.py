"""Wiring: the ticket service's database, consumers, relay, HTTP API and live event stream."""

from __future__ import annotations

import services.tickets
from contracts.commands import TICKET_COMMANDS
from contracts.incidents import IncidentIdentified
from contracts.sla import SlaDeadlinesChanged
from contracts.topics import (
    ESCALATION_COMMANDS,
    INCIDENTS_IDENTIFIED,
    NOTIFY_COMMANDS,
    ROUTING_COMMANDS,
    SHARED_COMMANDS,
    SLA_DEADLINES,
    Topic,
)
from runtime.auth import AuthSettings
from runtime.consumer import Handler
from runtime.service import Service
from runtime.settings import CommonSettings
from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.refused_commands import RefusedCommands
from services.tickets.api import tickets_router
from services.tickets.census import census_worker
from services.tickets.config import Settings
from services.tickets.handlers import apply_commands, open_tickets, record_deadlines
from services.tickets.relay import Relay
from services.tickets.stream import LogTail, stream_router


ROUTING_COMMANDS_GROUP = "helpdesk-tickets-commands-routing"
ESCALATION_COMMANDS_GROUP = "helpdesk-tickets-commands-escalation"
NOTIFY_COMMANDS_GROUP = "helpdesk-tickets-commands-notify"
SHARED_COMMANDS_GROUP = "helpdesk-tickets-commands"  # the group older releases read the shared topic with


def build(common: CommonSettings, settings: Settings, auth: AuthSettings | None = None) -> Service:
    """The ticket service; ``auth`` (else AUTH_* from the environment) says how people's tokens are checked."""
    service = Service("tickets", common, settings, description=services.tickets.__doc__ or "")
    service.require_credentials(api_keys=settings.integration_keys, auth=auth)
    db = TicketDatabase(settings.database_url)
    relay = Relay(
        db,
        service.publisher,
        batch_size=settings.relay_batch_size,
        poll_interval_s=settings.relay_poll_interval_ms / 1000,
    )
    tail = LogTail(db, poll_interval_s=settings.relay_poll_interval_ms / 1000)

    def appended() -> None:
        """This process committed new events: the relay publishes them, open streams send them."""
        relay.wake()
        tail.appended()

    service.on_startup(db.migrate)
    service.on_shutdown(db.close)
    # Shut-down hooks run last to first: open streams end before the database closes.
    service.on_shutdown(tail.close)
    service.on_stopping(tail.end)
    service.readiness.add("database", db.ping)

    # A group per topic: a rebalance of one consumer does not pause the other.
    service.subscribe(
        INCIDENTS_IDENTIFIED,
        open_tickets(db, appended),
        accepts=[IncidentIdentified],
        group="helpdesk-tickets-incidents",
    )

    def commands_on(topic: Topic, group: str) -> Handler:
        refused = RefusedCommands(service.publisher, service.name, common.kafka_topic_prefix + group)
        return apply_commands(db, appended, sent_on=topic, refused=refused)

    # A topic per producer. Each subscription takes every command type, so that one its producer may not
    # send is refused as such (dead-lettered "forbidden"), not as a malformed message.
    service.subscribe(
        ROUTING_COMMANDS,
        commands_on(ROUTING_COMMANDS, ROUTING_COMMANDS_GROUP),
        accepts=TICKET_COMMANDS,
        group=ROUTING_COMMANDS_GROUP,
    )
    service.subscribe(
        ESCALATION_COMMANDS,
        commands_on(ESCALATION_COMMANDS, ESCALATION_COMMANDS_GROUP),
        accepts=TICKET_COMMANDS,
        group=ESCALATION_COMMANDS_GROUP,
    )
    service.subscribe(
        NOTIFY_COMMANDS,
        commands_on(NOTIFY_COMMANDS, NOTIFY_COMMANDS_GROUP),
        accepts=TICKET_COMMANDS,
        group=NOTIFY_COMMANDS_GROUP,
    )
    service.subscribe(  # until the commands services of older releases sent there are drained
        SHARED_COMMANDS,
        commands_on(SHARED_COMMANDS, SHARED_COMMANDS_GROUP),
        accepts=TICKET_COMMANDS,
        group=SHARED_COMMANDS_GROUP,
    )
    service.subscribe(
        SLA_DEADLINES,
        record_deadlines(db),
        accepts=[SlaDeadlinesChanged],
        group="helpdesk-tickets-deadlines",
    )
    service.add_worker("relay", relay.run)
    service.add_worker("census", census_worker(db))
    service.add_worker("stream-tail", tail.watch)

    service.app.include_router(tickets_router(db, settings, appended))
    service.app.include_router(stream_router(db, tail))
    return service
