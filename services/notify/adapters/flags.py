"""The flag method: a ``command.flag_ticket`` to the ticket service, which shows the flag on the ticket.

The command id is derived from the notification key, so a resend after a crash
is the same command, which the ticket service applies once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.commands import FlagTicket, FlagTicketData
from contracts.topics import NOTIFY_COMMANDS
from runtime.kafka import Publisher
from services.notify.domain import Notification, flag_command_id
from services.notify.rendering import Rendered


class FlagRaiser:
    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    async def send(self, n: Notification, body: Rendered) -> None:
        assert n.ticket_id is not None  # checked when the notification was made
        command = FlagTicket(
            event_id=flag_command_id(n),
            ticket_id=n.ticket_id,
            occurred_at=datetime.now(UTC),
            correlation_id=n.correlation_id or str(n.cause),
            causation_id=str(n.cause),
            data=FlagTicketData(flag=n.context.get("flag", "escalated")[:50], reason=body.short or n.subject,
                                raised_by="notify"),
        )
        await self._publisher.publish(NOTIFY_COMMANDS, command, key=str(n.ticket_id))
