"""A Python client for the help desk's ticket API, and the ``helpdesk`` command line.

    from helpdesk_client import HelpdeskClient

    with HelpdeskClient("http://127.0.0.1:8002", token=token) as desk:
        ticket = desk.take_next("network")
        desk.add_note(ticket.number, "Called back", expected_version=ticket.version)

See docs/client.md.
"""

from helpdesk_client.aio import AsyncHelpdeskClient
from helpdesk_client.client import HelpdeskClient
from helpdesk_client.errors import (
    ApiError,
    Conflict,
    ConflictError,
    Forbidden,
    HelpdeskError,
    NotFound,
    RuleViolation,
    ServerError,
    TransportError,
    Unauthorized,
    ValidationError,
)
from helpdesk_client.models import (
    Attachment,
    Deadline,
    HistoryEntry,
    MergedInto,
    Problem,
    QueueList,
    QueueSummary,
    StreamEvent,
    Ticket,
    TicketDeadlines,
    TicketDetail,
    TicketLink,
    TicketList,
    TicketView,
    TimelineEvent,
)
from helpdesk_client.retry import NO_RETRIES, RetryPolicy

__all__ = [
    "NO_RETRIES",
    "ApiError",
    "AsyncHelpdeskClient",
    "Attachment",
    "Conflict",
    "ConflictError",
    "Deadline",
    "Forbidden",
    "HelpdeskClient",
    "HelpdeskError",
    "HistoryEntry",
    "MergedInto",
    "NotFound",
    "Problem",
    "QueueList",
    "QueueSummary",
    "RetryPolicy",
    "RuleViolation",
    "ServerError",
    "StreamEvent",
    "Ticket",
    "TicketDeadlines",
    "TicketDetail",
    "TicketLink",
    "TicketList",
    "TicketView",
    "TimelineEvent",
    "TransportError",
    "Unauthorized",
    "ValidationError",
]
