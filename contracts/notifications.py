"""Requests to notify people, sent to the notify service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.envelope import Envelope, Payload

Method = Literal["email", "sms", "pager", "phone", "alarm", "flag"]


class Recipient(Payload):
    kind: Literal["customer", "agent", "level"]
    id: str | None = Field(default=None, description="Agent id or level name.")
    email: str | None = None
    phone: str | None = None


class NotificationRequestedData(Payload):
    number: str = Field(description="Ticket number the notification is about.")
    recipient: Recipient
    method: Method
    template: str = Field(description="Template name, e.g. 'ticket_escalated'.")
    subject: str
    context: dict[str, str] = Field(default_factory=dict, description="Values the template may use.")


class NotificationRequested(Envelope[NotificationRequestedData]):
    type: Literal["notification.requested"] = "notification.requested"
    schema_version: Literal[1] = 1


NOTIFICATIONS: tuple[type[Envelope], ...] = (NotificationRequested,)
