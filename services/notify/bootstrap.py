"""Wiring: the store, the SMTP mailer, the templates and the two consumers."""

from __future__ import annotations

from contracts.notifications import NOTIFICATIONS
from contracts.tickets import TICKET_EVENTS
from contracts.topics import NOTIFICATION_REQUESTS, TICKET_EVENTS_TOPIC
from runtime.service import Service
from runtime.settings import CommonSettings
from services.notify.adapters.smtp import SmtpMailer
from services.notify.adapters.store import NotifyStore
from services.notify.config import Settings
from services.notify.handlers import NotificationRequestHandler, Outbox, TicketEventHandler
from services.notify.rendering import Templates

DESCRIPTION = "E-mails customers when their ticket is resolved, and sends the notifications other services request."


def build(common: CommonSettings, settings: Settings) -> Service:
    service = Service("notify", common, settings, description=DESCRIPTION)
    store = NotifyStore(settings.database_url)
    service.on_startup(store.create_schema)
    service.on_shutdown(store.close)
    service.readiness.add("database", store.ready)
    outbox = Outbox(store, SmtpMailer(settings), Templates())
    # Every ticket event arrives on this topic; the handler acts on opened and resolved only.
    service.subscribe(TICKET_EVENTS_TOPIC, TicketEventHandler(store, outbox), accepts=TICKET_EVENTS)
    # A group of its own: a rebalance of one consumer does not pause the other.
    service.subscribe(
        NOTIFICATION_REQUESTS,
        NotificationRequestHandler(outbox),
        accepts=NOTIFICATIONS,
        group="helpdesk-notify-requests",
    )
    return service
