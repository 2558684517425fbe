"""What each caller of the ticket API may do and see (who the caller is: tests/unit/test_auth.py)."""

from __future__ import annotations

import pytest

from runtime.auth import Caller
from runtime.problems import Problem
from services.tickets.auth import allow, may_see
from services.tickets.customer_view import sees_event


@pytest.mark.parametrize(
    "kind, action, allowed",
    [
        ("agent", "claim", True),
        ("integration", "claim", False),
        ("customer", "claim", False),
        ("integration", "work", True),
        ("customer", "work", False),
        ("customer", "read", True),
        ("customer", "reply", True),
        ("customer", "read_internal", False),
        ("integration", "read_internal", True),
    ],
)
def test_each_kind_of_caller_may_take_its_actions_only(kind: str, action: str, allowed: bool) -> None:
    caller = Caller("x", (kind,), "c-1" if kind == "customer" else None, kind)  # type: ignore[arg-type]
    if allowed:
        allow(caller, action)
    else:
        with pytest.raises(Problem) as refused:
            allow(caller, action)
        assert refused.value.status == 403


def test_a_customer_sees_only_their_own_tickets_and_staff_see_all() -> None:
    customer = Caller("c-1", ("customer",), "c-1", "customer")
    assert may_see(customer, "c-1") and not may_see(customer, "c-2") and not may_see(customer, None)
    assert may_see(Caller("alice", ("agent",)), "c-2")
    assert may_see(Caller("integration:crm", ("integration",), None, "integration"), None)


@pytest.mark.parametrize(
    "event_type, data, visible",
    [
        ("ticket.opened", {}, True),
        ("ticket.note_added", {"visibility": "public"}, True),
        ("ticket.note_added", {"visibility": "internal"}, False),
        ("ticket.customer_replied", {}, True),
        ("ticket.resolved", {}, True),
        ("ticket.merged", {}, True),
        ("ticket.assigned", {}, False),
        ("ticket.prioritised", {}, False),
        ("ticket.escalated", {}, False),
        ("ticket.flagged", {}, False),
        ("ticket.linked", {}, False),
        ("ticket.something_new", {}, False),
    ],
)
def test_a_customer_never_sees_the_desks_internal_events(event_type: str, data: dict[str, str], visible: bool) -> None:
    assert sees_event(event_type, data) is visible
