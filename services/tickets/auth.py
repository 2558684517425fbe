"""What each caller of the ticket API may do, and see.

Who the caller is comes from the shared check every service makes
(:mod:`runtime.auth`, run by :class:`runtime.http.RequestGuard` before the
request is read): an agent or lead, a customer (``sub`` is the customer's
directory id, the ``customer_id`` on their tickets), or an integration with an
API key (``TICKETS_API_KEYS``).

:func:`allow` says whether the caller's kind may take an action (403 if not);
:func:`may_see` whether a ticket is theirs to see at all (the API answers 404
if not, so a customer learns nothing of other customers' tickets);
what a customer sees of their own ticket is in ``customer_view.py``. The live
stream filters with the same.
"""

from runtime.auth import Caller, CallerKind
from runtime.http import caller_dependency
from runtime.problems import Problem

__all__ = ["ACTIONS", "Caller", "allow", "authenticated", "may_see"]

authenticated = caller_dependency(
    bearer_description="An agent's, lead's or customer's token (JWT).",
    api_key_description="An integration's API key.",
)

# What each kind of caller may do (leads may everything agents may; what only leads may decide is a
# ticket rule, answered 409 naming it). Customers see only their own tickets: checked by may_see.
ACTIONS: dict[str, frozenset[CallerKind]] = {
    "read": frozenset({"agent", "customer", "integration"}),  # a ticket, the list, the live stream
    "reply": frozenset({"agent", "customer", "integration"}),  # a note; a customer's is a public reply
    "read_internal": frozenset({"agent", "integration"}),  # queues, SLA deadlines
    "work": frozenset(
        {"agent", "integration"}
    ),  # release, status, priority, queue, resolve, close, reopen, merge, link
    "claim": frozenset({"agent"}),  # claim and take-next: only a person owns a ticket
}

def allow(caller: Caller, action: str) -> None:
    """Raise 403 unless callers of this kind may take ``action`` (one of :data:`ACTIONS`)."""
    if caller.kind not in ACTIONS[action]:
        what = "an integration" if caller.kind == "integration" else f"a {caller.kind}"
        raise Problem(403, "forbidden", "Not allowed", f"{what} may not {action.replace('_', ' ')} here")


def may_see(caller: Caller, ticket_customer_id: str | None) -> bool:
    """Whether the ticket (of the customer ``ticket_customer_id``) exists for this caller."""
    if caller.kind != "customer":
        return True
    return ticket_customer_id is not None and ticket_customer_id == caller.customer_id
