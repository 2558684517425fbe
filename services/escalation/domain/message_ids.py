"""The ids of the messages escalation sends, derived from what they are about.

The same ticket, level and purpose always give the same id: a crash between
publishing and recording republishes identical messages, which the ticket
service and notify apply once. An id names the level, not the reason, so a
ticket is never sent to the same level twice, whichever target it breached.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

ESCALATION_NAMESPACE = uuid.UUID("5b1f3c2e-8a4d-4f0e-9c6b-2d7e1a9f4b30")
"""Namespace of the ids escalation derives: the same ticket and level always give the same id."""


def escalate_command_id(ticket_id: uuid.UUID, to_level: int) -> uuid.UUID:
    # The id names the ticket and the level, not the moment: a crash between publishing and
    # recording "fired" republishes the same command, which the ticket service applies once.
    return uuid.uuid5(ESCALATION_NAMESPACE, f"escalate:{ticket_id}:{to_level}")


def assign_command_id(ticket_id: uuid.UUID, to_level: int) -> uuid.UUID:
    """The ``command.assign_ticket`` that hands the ticket to ``to_level``'s on-call agent."""
    return uuid.uuid5(ESCALATION_NAMESPACE, f"assign-on-call:{ticket_id}:{to_level}")


def escalation_notification_id(ticket_id: uuid.UUID, to_level: int) -> uuid.UUID:
    return uuid.uuid5(ESCALATION_NAMESPACE, f"notify-escalation:{ticket_id}:{to_level}")


def contact_notification_id(ticket_id: uuid.UUID, to_level: int, index: int, method: str) -> uuid.UUID:
    return uuid.uuid5(ESCALATION_NAMESPACE, f"notify-escalation:{ticket_id}:{to_level}:{index}:{method}")


def warning_notification_id(ticket_id: uuid.UUID, level: int, percent: int) -> uuid.UUID:
    """A first-response warning: one per level and percentage."""
    return uuid.uuid5(ESCALATION_NAMESPACE, f"warn:{ticket_id}:{level}:{percent}")


def target_warning_id(target: str, ticket_id: uuid.UUID, run: int, percent: int) -> uuid.UUID:
    """A next-update or resolution warning: one per run of the clock and percentage."""
    return uuid.uuid5(ESCALATION_NAMESPACE, f"warn:{target}:{ticket_id}:{run}:{percent}")


def breach_id(ticket_id: uuid.UUID, targets: Iterable[str], revision: int) -> uuid.UUID:
    """A breach with nowhere to escalate to (the top level): named by the stored record it was seen on."""
    return uuid.uuid5(ESCALATION_NAMESPACE, f"breach:{ticket_id}:{','.join(targets)}:{revision}")


def measure_id(event_id: uuid.UUID, kind: str) -> uuid.UUID:
    """A first-response or resolution time, named by the event that completed it: a replay adds nothing."""
    return uuid.uuid5(ESCALATION_NAMESPACE, f"measure:{kind}:{event_id}")


def sla_breach_id(ticket_id: uuid.UUID, target: str, run: int) -> uuid.UUID:
    """A target breached, named by the run of its clock: counted once, whichever pass or replica saw it."""
    return uuid.uuid5(ESCALATION_NAMESPACE, f"sla-breach:{target}:{ticket_id}:{run}")
