"""Folding a batch of ticket events over the stored deadlines: the same result as one event at a time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.envelope import new_envelope
from contracts.incidents import Channel, CustomerProfile
from contracts.tickets import (
    TICKET_EVENTS,
    TicketClaimed,
    TicketClaimedData,
    TicketEscalated,
    TicketEscalatedData,
    TicketFlagged,
    TicketOpened,
    TicketOpenedData,
    TicketPrioritised,
    TicketPrioritisedData,
    TicketRouted,
    TicketRoutedData,
)
from services.escalation.domain.deadline import Deadline, DeadlineState
from services.escalation.domain.policy import EscalationPolicy, Level
from services.escalation.domain.ticket_events import MOVES_DEADLINES, apply, fold
from services.escalation.status import REOPENED, STATUS_CHANGED

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
AFTER = timedelta(minutes=15)
POLICY = EscalationPolicy(
    (
        Level(1, "L1", None, "l1-oncall@helpdesk.example"),
        Level(2, "L2", "L2-specialists", "l2-oncall@helpdesk.example"),
        Level(3, "L3", "L3-engineering", "l3-oncall@helpdesk.example"),
    ),
    AFTER,
)
A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


def opened(ticket: uuid.UUID) -> Any:
    data = TicketOpenedData(
        number=f"HD-{ticket.int}", version=1, channel=Channel.EMAIL, channel_message_id=f"m-{ticket.int}",
        reported_at=T0, subject="Printer on fire", description="", customer=CustomerProfile(identified=False),
    )
    return new_envelope(TicketOpened, data, ticket_id=ticket, occurred_at=T0, correlation_id=f"corr-{ticket.int}")


def prioritised(ticket: uuid.UUID) -> Any:
    data = TicketPrioritisedData(number=f"HD-{ticket.int}", version=2, priority=2, rule="m", reason="x", by="routing")
    return new_envelope(TicketPrioritised, data, ticket_id=ticket, occurred_at=T0)


def routed(ticket: uuid.UUID, queue: str = "hardware") -> Any:
    data = TicketRoutedData(number=f"HD-{ticket.int}", version=3, queue=queue, rule="r", reason="x")
    return new_envelope(TicketRouted, data, ticket_id=ticket, occurred_at=T0)


def claimed(ticket: uuid.UUID) -> Any:
    data = TicketClaimedData(number=f"HD-{ticket.int}", version=4, agent_id="a1")
    return new_envelope(TicketClaimed, data, ticket_id=ticket, occurred_at=T0)


def escalated(ticket: uuid.UUID, level: int, at: datetime) -> Any:
    data = TicketEscalatedData(number=f"HD-{ticket.int}", version=4, level=level, queue=f"L{level}-q", reason="late")
    return new_envelope(TicketEscalated, data, ticket_id=ticket, occurred_at=at)


def one_by_one(known: dict[uuid.UUID, Deadline], events: list[Any]) -> dict[uuid.UUID, Deadline]:
    current = dict(known)
    for event in events:
        after = apply(current.get(event.ticket_id), event, POLICY)
        if after is not None:
            current[event.ticket_id] = after
    return current


def test_several_events_of_one_ticket_in_a_batch_build_on_each_other() -> None:
    later = T0 + AFTER + timedelta(seconds=5)
    changed = fold({}, [opened(A), prioritised(A), routed(A), escalated(A, 2, later)], POLICY)
    [(ticket, deadline)] = changed.items()
    assert ticket == A
    assert (deadline.level, deadline.queue, deadline.due_at, deadline.state) == (2, "L2-q", later + AFTER,
                                                                                  DeadlineState.PENDING)
    assert (deadline.priority, deadline.correlation_id) == (2, "corr-1")


def test_a_batch_mixing_tickets_gives_what_the_events_give_one_by_one() -> None:
    known = {C: fold({}, [opened(C), routed(C)], POLICY)[C]}
    events = [opened(A), opened(B), routed(A, "network"), claimed(B), claimed(C), prioritised(A)]
    changed = fold(known, events, POLICY)
    assert changed == {t: d for t, d in one_by_one(known, events).items() if t in (A, B, C)}
    assert (changed[A].queue, changed[A].state) == ("network", DeadlineState.PENDING)
    assert changed[B].state is changed[C].state is DeadlineState.CANCELLED


def test_only_the_deadlines_a_batch_changed_are_returned_and_the_known_ones_are_left_as_they_were() -> None:
    known = {A: fold({}, [opened(A), routed(A)], POLICY)[A], B: fold({}, [opened(B)], POLICY)[B]}
    before = dict(known)
    changed = fold(known, [routed(A), opened(B), routed(C)], POLICY)
    assert changed == {}  # same queue again, a second opening, a ticket never opened here
    assert known == before


def test_every_ticket_event_outside_moves_deadlines_changes_no_deadline() -> None:
    # The consumer skips those events without reading anything: right only if apply ignores them too.
    # ticket.status_changed and ticket.reopened are read by type name (services/escalation/status.py).
    by_name = {STATUS_CHANGED, REOPENED}
    ignored = [m for m in TICKET_EVENTS if m not in MOVES_DEADLINES and m.model_fields["type"].default not in by_name]
    assert TicketFlagged in ignored and TicketOpened not in ignored and TicketPrioritised not in ignored
    deadline = fold({}, [opened(A)], POLICY)[A]
    for model in ignored:
        event = model.model_construct(event_id=uuid.uuid4(), ticket_id=A, occurred_at=T0, correlation_id="c")
        assert apply(deadline, event, POLICY) is None, model
        assert apply(None, event, POLICY) is None, model
