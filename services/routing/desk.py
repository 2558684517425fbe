"""What routing knows of each ticket, and what it does when a ticket event arrives.

Pure: no I/O. The :class:`Desk` folds one batch of ticket events into the
tickets' views and produces the commands to send and the explanations to
keep. It decides on ``ticket.opened``; it reconsiders on
``ticket.customer_replied`` (new words) and ``ticket.escalated`` (a new
level and queue), but a priority an agent set (``ticket.prioritised`` with
``by`` other than ``routing``) or a queue an agent or escalation chose is
kept, and the explanation says so.

Every event that changes who holds an open ticket moves the agents' loads
(a load is the open tickets an agent holds, as the ticket service counts
them): claimed and assigned give the ticket to an agent, released takes it
back to the queue, resolved, closed and merged finish it (its holder keeps
it, but not as load), reopened makes it count again. Routing's own pick
counts at once (so the next decision sees it), awaiting the
``ticket.assigned`` that confirms it; a ticket finished before that arrives
was never given (the ticket service refuses to assign a finished ticket).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from contracts.commands import AssignTicket, AssignTicketData
from contracts.envelope import Envelope, new_envelope
from contracts.tickets import (
    TicketAssigned,
    TicketClaimed,
    TicketClosed,
    TicketCustomerReplied,
    TicketEscalated,
    TicketMerged,
    TicketOpened,
    TicketPrioritised,
    TicketReleased,
    TicketReopened,
    TicketResolved,
    TicketRouted,
)
from services.routing.assignment import Assignment, Roster, assign, assign_named
from services.routing.domain import (
    ROUTING_NAMESPACE,
    Decision,
    RoutingPolicy,
    TicketFacts,
    decide,
    route_command,
)

ROUTING = "routing"  # the ``by`` of routing's own priorities, the ``queue_by`` of its own queues


@dataclass
class TicketView:
    ticket_id: uuid.UUID
    number: str
    facts: TicketFacts | None = None  # None: opened before routing kept state
    priority: int | None = None
    priority_by: str = ROUTING  # else the agent who overrode it
    priority_note: str = ""
    queue: str | None = None
    queue_by: str = ROUTING  # else "escalation" or the agent who moved it
    skills: frozenset[str] = frozenset()
    holder: str | None = None  # assigned or claimed by
    claimed: bool = False
    open: bool = True  # not resolved, closed or merged
    level: int = 1
    awaiting_assignment: bool = False  # holder is routing's pick; ticket.assigned has not confirmed it yet


@dataclass(frozen=True)
class Explanation:
    """One decision about a ticket, as the explanation API shows it."""

    ticket_id: uuid.UUID
    cause_id: uuid.UUID
    cause: str
    at: datetime
    decision: Decision
    notes: tuple[str, ...]
    command_sent: bool

    def as_json(self) -> dict[str, Any]:
        d = self.decision
        return {
            "cause": self.cause,
            "cause_event_id": str(self.cause_id),
            "at": self.at.isoformat(),
            "priority": d.priority,
            "priority_rule": d.priority_rule,
            "priority_reason": d.priority_reason,
            "queue": d.queue,
            "queue_rule": d.queue_rule,
            "queue_reason": d.queue_reason,
            "required_skills": sorted(d.skills),
            "assign_to": d.assign_to,
            "rules_matched": [{"kind": m.kind, "rule": m.rule, "why": m.why, "applied": m.applied} for m in d.matches],
            "notes": list(self.notes),
            "command_sent": self.command_sent,
        }


@dataclass
class Desk:
    policy: RoutingPolicy
    roster: Roster
    views: dict[uuid.UUID, TicketView]
    now: datetime
    commands: list[Envelope[Any]] = field(default_factory=list)
    explanations: list[Explanation] = field(default_factory=list)
    changed: set[uuid.UUID] = field(default_factory=set)
    passed_over: list[str] = field(default_factory=list)

    def apply(self, event: Envelope[Any]) -> None:
        ticket_id = event.ticket_id
        if ticket_id is None:
            self.passed_over.append(event.type)
            return
        view = self.views.get(ticket_id)
        if view is None:
            view = self.views[ticket_id] = TicketView(ticket_id, event.data.number)
        self.changed.add(ticket_id)
        match event:
            case TicketOpened():
                self._opened(view, event)
            case TicketPrioritised():
                self._prioritised(view, event)
            case TicketRouted():
                view.queue = event.data.queue
                if event.data.rule == "manual":
                    view.queue_by = "manual"
            case TicketClaimed():
                self._hold(view, event.data.agent_id)
                view.claimed = True
            case TicketAssigned():
                self._hold(view, event.data.agent_id)
            case TicketReleased():
                self._hold(view, None)
                view.claimed = False
            case TicketResolved() | TicketClosed() | TicketMerged():  # merged: its work goes on in the other ticket
                self._finished(view)
            case TicketReopened():
                if not view.open:
                    self.roster.hold(view.holder, +1)
                view.open = True
            case TicketEscalated():
                view.level, view.queue, view.queue_by = event.data.level, event.data.queue, "escalation"
                self._reconsider(view, event, f"escalated to level {event.data.level}")
            case TicketCustomerReplied():
                if view.facts is not None:
                    view.facts = replace(view.facts, description=f"{view.facts.description}\n{event.data.text}")
                self._reconsider(view, event, "the customer replied")
            case _:
                self.passed_over.append(event.type)

    def _opened(self, view: TicketView, event: TicketOpened) -> None:
        view.facts = facts_of(event)
        decision = decide(self.policy, view.facts, self.now)
        view.priority, view.queue, view.skills = decision.priority, decision.queue, decision.skills
        self.commands.append(route_command(event, "route", decision, self.now))
        notes = [self._assign(view, event, decision)]
        self.explanations.append(
            Explanation(view.ticket_id, event.event_id, event.type, self.now, decision, tuple(notes), True)
        )

    def _prioritised(self, view: TicketView, event: TicketPrioritised) -> None:
        data = event.data
        if data.by != ROUTING:
            view.priority, view.priority_by = data.priority, data.by
            view.priority_note = f"set to {data.priority} by {data.by}: {data.reason}"
            # Queue rules may depend on the priority (e.g. priority 1 to major incidents).
            self._reconsider(view, event, f"priority set to {data.priority} by {data.by}")
        elif view.priority_by == ROUTING:
            view.priority = data.priority

    def _reconsider(self, view: TicketView, event: Envelope[Any], why: str) -> None:
        if view.facts is None or not view.open:
            return  # nothing to decide from, or nothing left to decide
        kept = view.priority if view.priority_by != ROUTING else None
        decision = decide(self.policy, replace(view.facts, level=view.level), self.now, kept_priority=kept)
        notes = [f"re-evaluated: {why}"]
        priority, queue = decision.priority, decision.queue
        if view.priority_by != ROUTING:
            priority = view.priority or decision.priority
            notes.append(
                f"priority {priority} kept: a human override ({view.priority_note}); "
                f"the rules would give {decision.priority} ({decision.priority_rule})"
            )
            decision = replace(decision, priority=priority, priority_rule="manual", priority_reason=view.priority_note)
        if view.queue_by != ROUTING and view.queue is not None:
            queue = view.queue
            notes.append(f"queue {queue!r} kept: chosen by {view.queue_by}; the rules would give {decision.queue!r}")
            decision = replace(
                decision,
                queue=queue,
                queue_rule=view.queue_by,
                queue_reason=f"kept: chosen by {view.queue_by}",
                assign_to=None,  # the rule that names an agent did not decide the queue
            )
        sent = (priority, queue) != (view.priority, view.queue)
        if sent:
            self.commands.append(route_command(event, "reroute", decision, self.now))
        queue_moved = queue != view.queue or isinstance(event, TicketEscalated)
        view.priority, view.queue = priority, queue
        if view.queue_by == ROUTING:
            view.skills = decision.skills
        if queue_moved and view.holder is None:  # the ticket service never takes a ticket from its holder
            notes.append(self._assign(view, event, decision))
        self.explanations.append(
            Explanation(view.ticket_id, event.event_id, event.type, self.now, decision, tuple(notes), sent)
        )

    def _assign(self, view: TicketView, cause: Envelope[Any], decision: Decision) -> str:
        assert view.queue is not None and view.facts is not None
        language = view.facts.language.casefold() if view.facts.language else None
        how = (self.policy.strategy(view.queue), view.ticket_id, view.queue, view.skills, language)
        if decision.assign_to is not None:
            outcome = assign_named(self.roster, decision.assign_to, decision.queue_rule, *how)
        else:
            outcome = assign(self.roster, *how)
        if not isinstance(outcome, Assignment):
            return outcome.reason
        self._hold(view, outcome.agent_id)
        view.awaiting_assignment = True
        self.commands.append(assign_command(cause, outcome, self.now))
        return f"assigned to {outcome.agent_id}: {outcome.reason}"

    def _hold(self, view: TicketView, agent_id: str | None) -> None:
        """The ticket is ``agent_id``'s now (None: nobody's); an open ticket moves its load with it."""
        view.awaiting_assignment = False  # an event about the holder settles routing's pick, either way
        if view.holder == agent_id:
            return  # e.g. the ticket.assigned of routing's own assignment
        if view.open:
            self.roster.hold(view.holder, -1)
            self.roster.hold(agent_id, +1)
        view.holder = agent_id

    def _finished(self, view: TicketView) -> None:
        if view.open:
            self.roster.hold(view.holder, -1)
        view.open = False
        if view.awaiting_assignment:
            # Routing's pick never landed: had it, its ticket.assigned would have come before this event.
            view.holder, view.awaiting_assignment = None, False


def assign_command(cause: Envelope[Any], assignment: Assignment, now: datetime) -> AssignTicket:
    data = AssignTicketData(agent_id=assignment.agent_id, strategy=assignment.strategy, reason=assignment.reason)
    command_id = uuid.uuid5(ROUTING_NAMESPACE, f"assign:{cause.event_id}")
    message = new_envelope(
        AssignTicket, data, ticket_id=cause.ticket_id, causation=cause, event_id=command_id, occurred_at=now
    )
    return message  # type: ignore[return-value]


def facts_of(opened: TicketOpened) -> TicketFacts:
    data = opened.data
    return TicketFacts(
        subject=data.subject,
        description=data.description,
        components=tuple(data.components),
        impact=data.impact,
        urgency=data.urgency,
        channel=data.channel.value,
        vip=data.customer.vip,
        department=data.customer.department,
        customer_id=data.customer.customer_id,
        language=data.customer.language,
        reported_at=data.reported_at,
        level=1,
    )
