"""The two consumers: ticket events (remember the customer, mail the resolution)
and notification requests (mail the addressee).

An e-mail is sent once per notification key: skipped when already recorded as
sent, else handed to SMTP and then recorded. A crash between the two can send
it once more, with the same Message-ID.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from contracts.notifications import NotificationRequested
from contracts.tickets import TicketOpened, TicketResolved
from runtime.consumer import Delivery, PoisonMessage
from runtime.logs import get_logger, log_context
from services.notify.adapters.smtp import SmtpMailer, build_message
from services.notify.adapters.store import NotifyStore
from services.notify.domain import (
    CustomerContact,
    Email,
    NotSupportedYet,
    UnusableRequest,
    contact_from,
    requested_email,
    resolution_email,
)
from services.notify.metrics import FAILED, SENT, SKIPPED
from services.notify.rendering import RenderingFailed, Templates

log = get_logger("services.notify.handlers")


class Outbox:
    """Sends each e-mail at most once per notification key (see the module docstring for the bound)."""

    def __init__(self, store: NotifyStore, mailer: SmtpMailer, templates: Templates) -> None:
        self._store = store
        self._mailer = mailer
        self._templates = templates

    async def send_once(self, email: Email) -> None:
        with log_context(ticket_number=email.context.get("number")):
            if await self._store.already_sent(email.notification_key):
                SKIPPED.labels("already_sent").inc()
                log.info("notification already sent", key=email.notification_key)
                return
            try:
                body = self._templates.render(email)
            except RenderingFailed as exc:
                FAILED.labels(email.method, "template").inc()
                raise PoisonMessage(str(exc)) from exc  # the same template fails the same way every time
            now = datetime.now(UTC)
            try:
                await self._mailer.send(build_message(email, body, sender=self._mailer.sender, date=now))
            except Exception:
                FAILED.labels(email.method, "smtp").inc()
                raise
            await self._store.record_sent(email, now)
            SENT.labels(email.method, email.template).inc()
            log.info("notification sent", key=email.notification_key, template=email.template, to=email.to)


class TicketEventHandler:
    def __init__(self, store: NotifyStore, outbox: Outbox) -> None:
        self._store = store
        self._outbox = outbox

    async def __call__(self, deliveries: Sequence[Delivery[Any]]) -> None:
        # Contacts first and in one transaction: a batch may hold a ticket's opening and its resolution.
        openings = [d.message for d in deliveries if isinstance(d.message, TicketOpened)]
        contacts = [(event.event_id, self._contact(event)) for event in openings]
        if contacts:
            await self._store.remember_contacts(contacts)
        for delivery in deliveries:
            if isinstance(delivery.message, TicketResolved):
                await self._resolved(delivery.message)

    @staticmethod
    def _contact(event: TicketOpened) -> CustomerContact:
        try:
            return contact_from(event)
        except UnusableRequest as exc:
            raise PoisonMessage(str(exc)) from exc

    async def _resolved(self, event: TicketResolved) -> None:
        if event.ticket_id is None:
            raise PoisonMessage(f"ticket.resolved {event.event_id} carries no ticket_id")
        email = resolution_email(event, await self._store.contact(event.ticket_id))
        if email is None:
            SKIPPED.labels("no_customer_email").inc()
            log.info("no customer e-mail known, resolution not mailed", ticket_number=event.data.number)
            return
        await self._outbox.send_once(email)


class NotificationRequestHandler:
    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def __call__(self, deliveries: Sequence[Delivery[Any]]) -> None:
        for delivery in deliveries:
            request: NotificationRequested = delivery.message
            try:
                email = requested_email(request)
            except NotSupportedYet as exc:
                FAILED.labels(request.data.method, "not_supported").inc()
                raise PoisonMessage(str(exc)) from exc  # dead-lettered with the reason, not dropped
            except UnusableRequest as exc:
                FAILED.labels(request.data.method, "unusable").inc()
                raise PoisonMessage(str(exc)) from exc
            await self._outbox.send_once(email)
