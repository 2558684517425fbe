"""Reading a ticket's status change and reopening, ticket events the contracts do not define yet.

The ticket service is to publish ``ticket.status_changed`` with ``data.status``
(``open``, ``waiting_on_customer``, ``waiting_on_third_party``...). Until that
event is in ``contracts/tickets.py`` this adapter reads it from any envelope
by its type name and the one field it needs, so the escalation rules work on
the small ``StatusChange`` below and not on a contract that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STATUS_CHANGED = "ticket.status_changed"
REOPENED = "ticket.reopened"

PAUSING_STATUSES = frozenset({"waiting_on_customer", "waiting_on_third_party"})
"""While a ticket is in one of these, its SLA clock stands still: the next move is not the help desk's."""


@dataclass(frozen=True)
class StatusChange:
    status: str


def status_change(event: Any) -> StatusChange | None:
    """The status a ``ticket.status_changed`` event sets; None for any other event."""
    if getattr(event, "type", None) != STATUS_CHANGED:
        return None
    data = getattr(event, "data", None)
    status = data.get("status") if isinstance(data, Mapping) else getattr(data, "status", None)
    return StatusChange(str(status)) if status else None


def is_reopening(event: Any) -> bool:
    """A ``ticket.reopened`` event (not in the contracts yet either): read by its type name alone."""
    return getattr(event, "type", None) == REOPENED
