"""The two consumers: ticket events (remember the customer, mail the customer, notify the
agents and levels of their preferences, call the integrations' webhooks) and notification
requests (notify the addressee by the method asked for).

A notification is sent once per notification key: skipped when already recorded
(one look-up for a whole batch), else held back by a rate limit or handed to its
channel, and then recorded. A crash between handing it over and the record can
send it once more, with the same Message-ID, dedup_key or Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from contracts.notifications import NotificationRequested
from contracts.tickets import (
    TicketAssigned,
    TicketEscalated,
    TicketMerged,
    TicketOpened,
    TicketResolved,
)
from runtime.consumer import Delivery, PoisonMessage
from runtime.logs import get_logger, log_context
from services.notify.adapters.headers import UnsafeHeader
from services.notify.adapters.providers import ProviderRejected
from services.notify.adapters.smtp import SmtpMailer, SmtpSession, build_message
from services.notify.adapters.store import NotifyStore
from services.notify.domain import (
    CustomerContact,
    Notification,
    NotSupported,
    UnusableRequest,
    acknowledgement_email,
    contact_from,
    fan_out,
    merged_email,
    note_email,
    public_note,
    request_address,
    requested_notification,
    resolution_email,
)
from services.notify.limits import RateLimits
from services.notify.metrics import FAILED, HELD_BACK, SENT, SKIPPED
from services.notify.recipients import Recipients
from services.notify.rendering import Rendered, RenderingFailed, Templates

log = get_logger("services.notify.handlers")


class Sender(Protocol):
    async def send(self, n: Notification, body: Rendered) -> None: ...


class Outbox:
    """Sends each notification at most once per key (see the module docstring for the bound)."""

    def __init__(
        self, store: NotifyStore, mailer: SmtpMailer, templates: Templates,
        senders: Mapping[str, Sender] | None = None, limits: RateLimits | None = None, record_every: int = 20,
        lanes: int = 8,
    ) -> None:
        self._lanes = lanes
        self._store = store
        self._mailer = mailer
        self._templates = templates
        self._senders = dict(senders or {})
        self._limits = limits
        self._record_every = record_every

    async def send_once(self, notifications: Sequence[Notification]) -> None:
        """Send those not sent before: one look-up for the batch, then ``lanes`` senders in
        parallel (each with its own SMTP connection; one ticket's notifications share a lane,
        so they go in order), recording what was handed over a group at a time."""
        if not notifications:
            return
        done = await self._store.already_sent({n.notification_key for n in notifications})
        handed_over: list[tuple[Notification, str]] = []
        lanes: dict[int, list[Notification]] = defaultdict(list)
        for n in notifications:
            if n.notification_key in done:
                SKIPPED.labels("already_sent").inc()
                log.info("notification already sent", key=n.notification_key, ticket_number=n.number)
                continue
            done.add(n.notification_key)  # the same cause twice in one batch is sent once
            if self._held_back(n):
                handed_over.append((n, "held_back"))
            else:
                lanes[hash(n.ticket_id or n.to) % self._lanes].append(n)
        outcomes = await asyncio.gather(*(self._lane(lane, handed_over) for lane in lanes.values()),
                                        return_exceptions=True)
        # Also when a notification failed: what was handed over must not be sent again.
        await self._record(handed_over)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            poison = [f for f in failures if isinstance(f, PoisonMessage)]
            raise (poison or failures)[0]

    async def _lane(self, lane: list[Notification], handed_over: list[tuple[Notification, str]]) -> None:
        async with self._mailer.session() as smtp:
            for n in lane:
                with log_context(ticket_number=n.number, correlation_id=n.correlation_id):
                    handed_over.append((n, await self._send(n, smtp)))
                if len(handed_over) >= self._record_every:
                    await self._record(handed_over)

    async def _record(self, handed_over: list[tuple[Notification, str]]) -> None:
        """Record a group of handed-over notifications in one transaction (one commit per
        notification would cap the rate at the disk's commit rate). A crash before the commit
        resends at most ``record_every`` notifications: the bound documented in docs/notify.md."""
        if not handed_over:
            return
        group = list(handed_over)
        handed_over.clear()  # before the await: another lane must not record the same group
        await self._store.record_many(group, datetime.now(UTC))

    def _held_back(self, n: Notification) -> bool:
        limit = self._limits.hold_back(n.method, n.to, time.monotonic()) if self._limits else None
        if limit is None:
            return False
        HELD_BACK.labels(n.method, limit).inc()
        log.warning("notification held back by a rate limit", key=n.notification_key, method=n.method, limit=limit)
        return True

    async def _send(self, n: Notification, smtp: SmtpSession) -> str:
        try:
            body = self._templates.render(n)
        except RenderingFailed as exc:
            FAILED.labels(n.method, "template").inc()
            raise PoisonMessage(str(exc)) from exc  # the same template fails the same way every time
        now = datetime.now(UTC)
        try:
            if n.method == "email":
                await smtp.send(self._mailer.sender, n.to, build_message(n, body, sender=self._mailer.sender, date=now))
            else:
                await self._sender(n).send(n, body)
        except PoisonMessage:
            raise
        except UnsafeHeader as exc:  # a line break where a header value goes: refused every time
            FAILED.labels(n.method, "unsafe_header").inc()
            log.error("notification refused", key=n.notification_key, method=n.method, header=exc.header)
            raise PoisonMessage(str(exc)) from exc
        except Exception as exc:
            rejected = isinstance(exc, ProviderRejected)
            FAILED.labels(n.method, "rejected" if rejected else "smtp" if n.method == "email" else "provider").inc()
            if rejected:
                raise PoisonMessage(str(exc)) from exc
            raise
        SENT.labels(n.method, n.template).inc()
        log.info("notification sent", key=n.notification_key, method=n.method, template=n.template, to=n.to)
        return "sent"

    def _sender(self, n: Notification) -> Sender:
        sender = self._senders.get(n.method)
        if sender is None:
            FAILED.labels(n.method, "not_supported").inc()
            raise PoisonMessage(f"method {n.method} is not configured")
        return sender


class TicketEventHandler:
    """Acts on the ticket events notify has something to say about; every other event is
    ignored without touching the database (ignoring it again on redelivery is just as idempotent)."""

    def __init__(
        self, store: NotifyStore, outbox: Outbox, *, recipients: Recipients | None = None,
        acknowledge: bool = False, reply_to: str = "", public_notes: bool = True,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._recipients = recipients or Recipients.none()
        self._acknowledge = acknowledge
        self._reply_to = reply_to
        self._public_notes = public_notes

    async def __call__(self, deliveries: Sequence[Delivery[Any]]) -> None:
        events = [d.message for d in deliveries]
        openings = {e.event_id: self._contact(e) for e in events if isinstance(e, TicketOpened)}
        # Contacts first: a batch may hold a ticket's opening and its resolution.
        if openings:
            await self._store.remember_contacts(list(openings.values()))
        needing = {self._ticket_of(e) for e in events if self._needs_contact(e)}
        contacts = await self._store.contacts(needing) if needing else {}
        notifications: list[Notification] = []
        for event in events:
            notifications.extend(self._for_customer(event, openings, contacts))
            notifications.extend(self._for_agents(event))
            notifications.extend(self._for_integrations(event))
        await self._outbox.send_once(notifications)

    def _needs_contact(self, event: Any) -> bool:
        return isinstance(event, (TicketResolved, TicketMerged)) or (
            self._public_notes and public_note(event) is not None
        )

    def _for_customer(
        self, event: Any, openings: Mapping[uuid.UUID, CustomerContact], contacts: Mapping[uuid.UUID, CustomerContact]
    ) -> list[Notification]:
        if isinstance(event, TicketOpened):
            found = acknowledgement_email(event, openings[event.event_id], self._reply_to) if self._acknowledge else None
        elif isinstance(event, TicketResolved):
            found = resolution_email(event, contacts.get(self._ticket_of(event)))
        elif isinstance(event, TicketMerged):
            found = merged_email(event, contacts.get(self._ticket_of(event)))
        elif self._public_notes and public_note(event) is not None:
            found = note_email(event, contacts.get(self._ticket_of(event)))
        else:
            return []
        if found is None and not isinstance(event, TicketOpened):
            SKIPPED.labels("no_customer_email").inc()
            log.info("no customer e-mail known, not mailed", ticket_number=event.data.number, type=event.type)
        return [found] if found else []

    def _for_agents(self, event: Any) -> list[Notification]:
        if isinstance(event, TicketEscalated):
            routes = self._recipients.routes("level", str(event.data.level))
            template = "ticket_escalated"
            context = {"level": str(event.data.level), "queue": event.data.queue, "reason": event.data.reason}
            subject = f"[{event.data.number}] escalated to level {event.data.level}"
        elif isinstance(event, TicketAssigned):
            routes = self._recipients.routes("agent", event.data.agent_id)
            template, context = "ticket_assigned", {"reason": event.data.reason, "flag": "assigned"}
            subject = f"[{event.data.number}] assigned to you"
        else:
            return []
        return fan_out(
            f"{event.data.number}.{event.type.removeprefix('ticket.')}.{event.event_id}", event.event_id,
            [(r.method, r.to) for r in routes], subject=subject, template=template,
            context={**context, "number": event.data.number}, ticket_id=event.ticket_id,
            correlation_id=event.correlation_id,
        )

    def _for_integrations(self, event: Any) -> list[Notification]:
        hooks = [h for h in self._recipients.webhooks if event.type in h.events]
        return [
            Notification(
                notification_key=f"webhook.{hook.name}.{event.event_id}", cause=event.event_id, method="webhook",
                to=hook.name, subject=event.type, template="webhook", context={"number": event.data.number},
                ticket_id=event.ticket_id, correlation_id=event.correlation_id, payload=event.model_dump(mode="json"),
            )
            for hook in hooks
        ]

    @staticmethod
    def _contact(event: TicketOpened) -> CustomerContact:
        try:
            return contact_from(event)
        except UnusableRequest as exc:
            raise PoisonMessage(str(exc)) from exc

    @staticmethod
    def _ticket_of(event: Any) -> uuid.UUID:
        if event.ticket_id is None:
            raise PoisonMessage(f"{event.type} {event.event_id} carries no ticket_id")
        return event.ticket_id


class NotificationRequestHandler:
    def __init__(self, outbox: Outbox, recipients: Recipients | None = None) -> None:
        self._outbox = outbox
        self._recipients = recipients or Recipients.none()

    async def __call__(self, deliveries: Sequence[Delivery[Any]]) -> None:
        await self._outbox.send_once([self._notification(delivery.message) for delivery in deliveries])

    def _notification(self, request: NotificationRequested) -> Notification:
        recipient = request.data.recipient
        address = request_address(request) or self._recipients.address(recipient.kind, recipient.id, request.data.method)
        try:
            return requested_notification(request, address)
        except (NotSupported, UnusableRequest) as exc:
            FAILED.labels(request.data.method, "unusable").inc()
            raise PoisonMessage(str(exc)) from exc  # dead-lettered with the reason, not dropped
