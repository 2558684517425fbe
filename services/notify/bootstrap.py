"""Wiring: the store, the recipients file, the channels (SMTP, HTTP providers, flags),
the rate limits, the templates and the two consumers."""

from __future__ import annotations

from contracts.notifications import NOTIFICATIONS
from contracts.tickets import TICKET_EVENTS
from contracts.topics import NOTIFICATION_REQUESTS, TICKET_EVENTS_TOPIC
from runtime.service import Service
from runtime.settings import CommonSettings
from services.notify.adapters.flags import FlagRaiser
from services.notify.adapters.providers import HttpProviders
from services.notify.adapters.smtp import SmtpMailer
from services.notify.adapters.store import NotifyStore
from services.notify.config import Settings
from services.notify.handlers import (
    NotificationRequestHandler,
    Outbox,
    TicketEventHandler,
)
from services.notify.limits import LimitSettings, RateLimits
from services.notify.recipients import load_recipients
from services.notify.rendering import Templates

DESCRIPTION = (
    "Tells customers (acknowledgement, resolution, public notes) and agents (SMS, call, pager, alarm, flag, "
    "e-mail) what happened to a ticket, calls integrations' webhooks, and sends what other services request."
)


def rate_limits(s: Settings) -> RateLimits:
    return RateLimits(LimitSettings(
        per_recipient_per_s=s.rate_per_recipient_per_min / 60, per_recipient_burst=s.rate_per_recipient_burst,
        overall_per_s=s.rate_overall_per_s, overall_burst=s.rate_overall_burst,
        phone_per_s=s.rate_phone_per_s, phone_burst=s.rate_phone_burst,
    ))


def build(common: CommonSettings, settings: Settings) -> Service:
    recipients = load_recipients(settings.recipients_file)
    service = Service("notify", common, settings, description=DESCRIPTION)
    store = NotifyStore(settings.database_url)
    providers = HttpProviders(settings, recipients)
    service.on_startup(store.create_schema)
    service.on_shutdown(store.close)
    service.on_shutdown(providers.close)
    service.readiness.add("database", store.ready)
    senders = {method: providers for method in HttpProviders.METHODS} | {"flag": FlagRaiser(service.publisher)}
    outbox = Outbox(store, SmtpMailer(settings), Templates(default_language=settings.default_language),
                    senders, rate_limits(settings), record_every=settings.record_every,
                    lanes=settings.parallel_sends)
    events = TicketEventHandler(
        store, outbox, recipients=recipients, acknowledge=settings.acknowledge_openings,
        reply_to=settings.reply_to or settings.smtp_from, public_notes=settings.mail_public_notes,
    )
    # Every ticket event arrives on this topic; the handler skips those it has nothing to say about.
    service.subscribe(TICKET_EVENTS_TOPIC, events, accepts=TICKET_EVENTS)
    # A group of its own: a rebalance of one consumer does not pause the other.
    service.subscribe(
        NOTIFICATION_REQUESTS,
        NotificationRequestHandler(outbox, recipients),
        accepts=NOTIFICATIONS,
        group="helpdesk-notify-requests",
    )
    return service
