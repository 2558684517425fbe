"""The two consumers: ticket events (remember the customer, mail the resolution)
and notification requests (mail the addressee).

An e-mail is sent once per notification key: skipped when already recorded as
sent (one look-up for a whole batch), else handed to SMTP and then recorded. A
crash between the two can send it once more, with the same Message-ID.
"""

from __future__ import annotations

import uuid
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

    async def send_once(self, emails: Sequence[Email]) -> None:
        """Send those of ``emails`` not sent before: one look-up for all, then SMTP and a record per e-mail."""
        if not emails:
            return
        done = await self._store.already_sent({e.notification_key for e in emails})
        for email in emails:
            with log_context(ticket_number=email.context.get("number")):
                if email.notification_key in done:
                    SKIPPED.labels("already_sent").inc()
                    log.info("notification already sent", key=email.notification_key)
                    continue
                await self._send(email)
                done.add(email.notification_key)  # the same cause twice in one batch is sent once

    async def _send(self, email: Email) -> None:
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
        # Recorded right after each send, not once for the batch: a later failure must not resend this one.
        await self._store.record_sent(email, now)
        SENT.labels(email.method, email.template).inc()
        log.info("notification sent", key=email.notification_key, template=email.template, to=email.to)


class TicketEventHandler:
    """Acts on ``ticket.opened`` and ``ticket.resolved``; every other ticket event is ignored
    without touching the database (ignoring it again on redelivery is just as idempotent)."""

    def __init__(self, store: NotifyStore, outbox: Outbox) -> None:
        self._store = store
        self._outbox = outbox

    async def __call__(self, deliveries: Sequence[Delivery[Any]]) -> None:
        openings = [d.message for d in deliveries if isinstance(d.message, TicketOpened)]
        resolutions = [d.message for d in deliveries if isinstance(d.message, TicketResolved)]
        # Contacts first: a batch may hold a ticket's opening and its resolution.
        if openings:
            await self._store.remember_contacts([self._contact(event) for event in openings])
        if resolutions:
            await self._outbox.send_once(await self._resolution_emails(resolutions))

    @staticmethod
    def _contact(event: TicketOpened) -> CustomerContact:
        try:
            return contact_from(event)
        except UnusableRequest as exc:
            raise PoisonMessage(str(exc)) from exc

    async def _resolution_emails(self, resolutions: Sequence[TicketResolved]) -> list[Email]:
        tickets = [self._ticket_of(event) for event in resolutions]
        contacts = await self._store.contacts(set(tickets))
        emails = []
        for event, ticket_id in zip(resolutions, tickets, strict=True):
            email = resolution_email(event, contacts.get(ticket_id))
            if email is None:
                SKIPPED.labels("no_customer_email").inc()
                log.info("no customer e-mail known, resolution not mailed", ticket_number=event.data.number)
            else:
                emails.append(email)
        return emails

    @staticmethod
    def _ticket_of(event: TicketResolved) -> uuid.UUID:
        if event.ticket_id is None:
            raise PoisonMessage(f"ticket.resolved {event.event_id} carries no ticket_id")
        return event.ticket_id


class NotificationRequestHandler:
    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def __call__(self, deliveries: Sequence[Delivery[Any]]) -> None:
        await self._outbox.send_once([self._email(delivery.message) for delivery in deliveries])

    @staticmethod
    def _email(request: NotificationRequested) -> Email:
        try:
            return requested_email(request)
        except NotSupportedYet as exc:
            FAILED.labels(request.data.method, "not_supported").inc()
            raise PoisonMessage(str(exc)) from exc  # dead-lettered with the reason, not dropped
        except UnusableRequest as exc:
            FAILED.labels(request.data.method, "unusable").inc()
            raise PoisonMessage(str(exc)) from exc
