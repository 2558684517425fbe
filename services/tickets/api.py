"""The ticket query and command API for agents' clients, customers and integrations (``/v1``).

Every request carries a credential (``Authorization: Bearer <JWT>`` of an
agent, a lead or a customer, or an integration's ``X-API-Key``; see
``auth.py``); the id recorded on a claim, a note or a resolution is the
credential's, never anything in the request. What a caller may do is decided
by its kind (``auth.ACTIONS``, 403 otherwise); a customer sees only their own
tickets (404 for others') and none of the desk's internal events. A ticket is
named by its id or its number (HD-12).

Writes use optimistic concurrency: a GET returns ``ETag: "<version>"``; a write
may send it back as ``If-Match`` and is refused with 409 ``stale-version``
(saying the ``current_version``) if the ticket moved on meanwhile. Without
If-Match the write applies to the ticket as it is, and two writers racing on
it still cannot both win (the loser gets 409 ``concurrent-update``).
See docs/tickets-api.md.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations,
# which name dependency aliases local to tickets_router.

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import AwareDatetime
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.envelope import Envelope, new_envelope
from contracts.incidents import Channel
from contracts.tickets import MESSAGE_OF_DATA, LinkKind
from runtime.problems import Problem, documented
from services.tickets import auth, customer_view
from services.tickets.adapters import deadlines, event_store, read_model, repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.event_store import ConcurrencyConflict
from services.tickets.adapters.repository import Change, TicketHistory
from services.tickets.config import Settings
from services.tickets.domain import (
    Actor,
    Status,
    Ticket,
    TicketEvent,
    TicketRuleViolation,
)
from services.tickets.metrics import COMMANDS
from services.tickets.representations import (
    Assignment,
    HistoryEntry,
    LinkRequest,
    LinkView,
    Merge,
    Note,
    PriorityChange,
    QueueList,
    QueueMove,
    QueueSummary,
    Reopening,
    Resolution,
    StatusChange,
    TicketDeadlines,
    TicketDetail,
    TicketList,
    TicketRefView,
    TicketView,
    attachment_views,
)

CONFLICT_ATTEMPTS = 5
# Rules about what the request says (it could never succeed) rather than about the ticket's state.
INPUT_RULES = frozenset(
    {
        "resolution_required",
        "agent_required",
        "priority_out_of_range",
        "queue_required",
        "note_text_required",
        "visibility_unknown",
        "status_not_settable",
        "reason_required",
        "link_kind_unknown",
    }
)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: documented("No valid credential"),
    403: documented("The caller's role may not do this"),
    404: documented("No such ticket (or not the customer's own)"),
    # Problem+json like every error (FastAPI would document its own HTTPValidationError shape).
    422: documented("Invalid input: `errors` says where and what (or a ticket-rule the request could never meet)"),
}
BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: documented("A malformed If-Match, cursor or request body"),
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    **BAD_REQUEST,
    409: documented(
        "A ticket rule forbids it (stale-version: If-Match names an older version; "
        "concurrent-update: a concurrent change won)"
    ),
}

# What a command decides: the events of the ticket it names, and of the other ticket (merge, link; else none).
Decision = tuple[list[TicketEvent], list[TicketEvent]]


def tickets_router(db: TicketDatabase, settings: Settings, appended: Callable[[], None]) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["tickets"])
    Who = Annotated[auth.Caller, Depends(auth.authenticated)]
    IfMatch = Annotated[str | None, Header(description='The version from the ETag, e.g. "3".')]

    @router.get("/tickets/{ref}", response_model=TicketDetail, responses=ERRORS)
    async def get_ticket(
        ref: str,
        response: Response,
        caller: Who,
        as_of: Annotated[
            AwareDatetime | None, Query(description="Show the ticket as it stood at this moment (ISO 8601).")
        ] = None,
    ) -> TicketDetail:
        """A ticket with its whole history. ``ref`` is its id or its number (HD-12)."""
        auth.allow(caller, "read")
        async with db.reader.connect() as conn:
            history = await _load(conn, ref, caller)
        if as_of is not None:
            history = _as_of(history, ref, as_of)
        return _detail(history, response, caller)

    @router.get("/tickets/{ref}/deadlines", response_model=TicketDeadlines, responses=ERRORS)
    async def ticket_deadlines(ref: str, caller: Who) -> TicketDeadlines:
        """Every SLA deadline of the ticket, as the escalation service last computed them."""
        auth.allow(caller, "read_internal")
        async with db.reader.connect() as conn:
            ticket_id = await repository.find(conn, ref)
            if ticket_id is None:
                raise _not_found(ref)
            row = await deadlines.of_ticket(conn, ticket_id)
            number = row["number"] if row else (await read_model.number_of(conn, ticket_id))
        if row is None:
            return TicketDeadlines(
                ticket_id=ticket_id, number=number, policy=None, calendar=None, deadlines=[], as_of=None
            )
        return TicketDeadlines(**row, as_of=row["occurred_at"])

    @router.get("/tickets", response_model=TicketList, responses={**ERRORS, **BAD_REQUEST})
    async def list_tickets(
        caller: Who,
        status: Status | None = None,
        queue: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
        priority: Annotated[int | None, Query(ge=1, le=5)] = None,
        assignee: Annotated[str | None, Query(min_length=1, max_length=200, description="An agent id.")] = None,
        customer: Annotated[
            str | None, Query(min_length=1, max_length=200, description="The customer's directory id.")
        ] = None,
        channel: Annotated[str | None, Query(min_length=1, max_length=20)] = None,
        channel_message_id: Annotated[
            str | None, Query(min_length=1, max_length=200, description="Find the ticket a contact opened.")
        ] = None,
        opened_after: Annotated[AwareDatetime | None, Query(description="Opened at or after (ISO 8601).")] = None,
        opened_before: Annotated[AwareDatetime | None, Query(description="Opened before.")] = None,
        updated_after: Annotated[AwareDatetime | None, Query(description="Last changed at or after.")] = None,
        updated_before: Annotated[AwareDatetime | None, Query(description="Last changed before.")] = None,
        q: Annotated[
            str | None,
            Query(min_length=1, max_length=200, description="Text searched in subject, description and public notes."),
        ] = None,
        cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page.")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> TicketList:
        """Tickets, newest first; every filter given narrows the list. Page on with ``next_cursor``.

        A customer's list holds only their own tickets (whatever ``customer`` says).
        """
        auth.allow(caller, "read")
        if caller.kind == "customer":
            internal = {"queue": queue, "assignee": assignee, "priority": priority}
            if asked := [name for name in customer_view.INTERNAL_FILTERS if internal[name] is not None]:
                raise Problem(403, "forbidden", "Not allowed", f"a customer may not filter by {', '.join(asked)}")
            if customer not in (None, caller.customer_id):
                return TicketList(tickets=[])
            customer = caller.customer_id
        query = read_model.TicketQuery(
            limit=limit,
            status=status,
            queue=queue,
            priority=priority,
            assignee=assignee,
            customer_id=customer,
            channel=channel,
            channel_message_id=channel_message_id,
            opened_after=opened_after,
            opened_before=opened_before,
            updated_after=updated_after,
            updated_before=updated_before,
            text=q,
            after=_parse_cursor(cursor) if cursor else None,
        )
        async with db.reader.connect() as conn:
            rows = await read_model.list_tickets(conn, query)
        more = len(rows) == limit
        return TicketList(
            tickets=[_view(TicketView.model_validate(r), caller) for r in rows],
            next_cursor=_cursor(rows[-1]) if more else None,
        )

    @router.get("/queues/{queue}/tickets", response_model=TicketList, responses=ERRORS)
    async def queue_line(queue: str, caller: Who, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> TicketList:
        """The queue's line, priority 1 first, then oldest first: its unclaimed tickets (take-next takes the
        first of these), and the tickets escalated to it that someone already owns (shown with their
        ``assignee`` and status), so a level sees every ticket sent to it."""
        auth.allow(caller, "read_internal")
        async with db.reader.connect() as conn:
            rows = await read_model.queue_line(conn, queue, limit)
        return TicketList(tickets=[TicketView.model_validate(r) for r in rows])

    @router.get("/queues", response_model=QueueList, responses=ERRORS)
    async def list_queues(caller: Who) -> QueueList:
        """Every queue with how many tickets wait in it and how long the oldest has waited."""
        auth.allow(caller, "read_internal")
        async with db.reader.connect() as conn:
            rows = await read_model.queues(conn)
        now = datetime.now(UTC)
        return QueueList(
            queues=[
                QueueSummary(
                    **r,
                    oldest_age_s=(now - r["oldest_opened_at"]).total_seconds() if r["oldest_opened_at"] else None,
                )
                for r in rows
            ]
        )

    @router.post(
        "/queues/{queue}/take-next",
        response_model=TicketDetail,
        responses={**WRITE_ERRORS, 204: {"description": "Nobody is waiting in the queue"}},
    )
    async def take_next(queue: str, response: Response, caller: Who) -> Any:
        """Claim the ticket at the head of the queue's line for the token's agent.

        Two agents asking at once never get the same ticket: each gets the next one
        still waiting. 204 when the line is empty.
        """
        auth.allow(caller, "claim")
        for _attempt in range(CONFLICT_ATTEMPTS):
            try:
                history = await take_head(queue, caller.id)
            except ConcurrencyConflict:
                continue  # the head moved under us (claimed by hand meanwhile): take the next head
            if history is None:
                return Response(status_code=204)
            appended()
            COMMANDS.labels("take_next", "applied").inc()
            return _detail(history, response, caller)
        raise Problem(409, "concurrent-update", "The queue changed meanwhile", "too many agents at once; retry")

    async def take_head(queue: str, agent_id: str) -> TicketHistory | None:
        async with db.writer.begin() as conn:
            ticket_id = await read_model.take_head_of_line(conn, queue)
            if ticket_id is None:
                return None
            history = (await repository.load(conn, [ticket_id]))[ticket_id]
            new = _recorded(history, history.ticket.claim(agent_id))
            await repository.save(conn, [Change.of(history.ticket, new)])
            return history.extended(new)

    @router.post("/tickets/{ref}/claim", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def claim(ref: str, response: Response, caller: Who, if_match: IfMatch = None) -> TicketDetail:
        """Take the ticket; the token's agent becomes its owner. Claiming one's own ticket again changes nothing."""
        auth.allow(caller, "claim")
        history = await change(caller, ref, if_match, "claim", lambda t: t.claim(caller.id))
        return _detail(history, response, caller)

    @router.post("/tickets/{ref}/resolve", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def resolve(
        ref: str, body: Resolution, response: Response, caller: Who, if_match: IfMatch = None
    ) -> TicketDetail:
        """Resolve a ticket one owns (a lead may resolve any); the customer is told the resolution."""
        auth.allow(caller, "work")
        history = await change(
            caller, ref, if_match, "resolve", lambda t: t.resolve(caller.id, body.resolution, lead=caller.lead)
        )
        return _detail(history, response, caller)

    @router.post("/tickets/{ref}/release", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def release(ref: str, response: Response, caller: Who, if_match: IfMatch = None) -> TicketDetail:
        """Put the ticket back in its queue, open and unowned. Its owner or a lead may."""
        auth.allow(caller, "work")
        history = await change(caller, ref, if_match, "release", lambda t: t.release(_actor(caller)))
        return _detail(history, response, caller)

    @router.post("/tickets/{ref}/notes", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def add_note(
        ref: str,
        body: Note,
        response: Response,
        caller: Who,
        if_match: IfMatch = None,
        idempotency_key: Annotated[
            str | None,
            Header(max_length=200, description="A customer's reply: the same key again records the reply once."),
        ] = None,
    ) -> TicketDetail:
        """Write a note on the ticket; the credential's id is its author. Public notes reach the customer.

        A customer writes on their own ticket only, and only publicly: the note is
        recorded as their reply (``ticket.customer_replied``, channel ``web``).
        """
        auth.allow(caller, "reply")
        if caller.kind == "customer":
            if "visibility" in body.model_fields_set and body.visibility != "public":
                raise Problem(403, "forbidden", "Not allowed", "a customer's note is a public reply")
            message_id = f"api:{idempotency_key or uuid.uuid4()}"
            at = datetime.now(UTC)

            def reply(t: Ticket) -> list[TicketEvent]:
                return t.customer_reply(channel=Channel.WEB, message_id=message_id, received_at=at, text=body.text)

            history = await change(caller, ref, if_match, "customer_reply", reply)
        else:
            history = await change(
                caller, ref, if_match, "add_note", lambda t: t.add_note(caller.id, body.text, body.visibility)
            )
        return _detail(history, response, caller)

    @router.post("/tickets/{ref}/status", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def change_status(
        ref: str, body: StatusChange, response: Response, caller: Who, if_match: IfMatch = None
    ) -> TicketDetail:
        """Say what the ticket waits for (waiting statuses pause SLA clocks). Its owner or a lead may."""
        auth.allow(caller, "work")
        status = Status(body.status)
        history = await change(
            caller, ref, if_match, "change_status", lambda t: t.change_status(_actor(caller), status)
        )
        return _detail(history, response, caller)

    @router.post("/tickets/{ref}/assignment", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def assign(
        ref: str, body: Assignment, response: Response, caller: Who, if_match: IfMatch = None
    ) -> TicketDetail:
        """Give the ticket to a named agent (a team lead only), taking it from its owner if it has one.

        Recorded as ``ticket.assigned`` (strategy ``direct``, ``assigned_by`` the lead); the status stays.
        Giving it to its owner changes nothing."""
        auth.allow(caller, "work")
        if not caller.lead:
            raise Problem(403, "forbidden", "Not allowed", "only a team lead may give a ticket to another agent")
        history = await change(
            caller,
            ref,
            if_match,
            "assign",
            lambda t: t.assign_to(body.agent_id, lead=_actor(caller), reason=body.reason),
        )
        return _detail(history, response, caller)

    @router.post("/tickets/{ref}/priority", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def change_priority(
        ref: str, body: PriorityChange, response: Response, caller: Who, if_match: IfMatch = None
    ) -> TicketDetail:
        """Override the priority, saying why (recorded as rule 'manual', by the token's agent)."""
        auth.allow(caller, "work")
        history = await change(
            caller,
            ref,
            if_match,
            "change_priority",
            lambda t: t.change_priority(_actor(caller), body.priority, body.reason),
        )
        return _detail(history, response, caller)

    @router.post("/tickets/{ref}/queue", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def move_to_queue(
        ref: str, body: QueueMove, response: Response, caller: Who, if_match: IfMatch = None
    ) -> TicketDetail:
        """Move the ticket to another queue (rule 'manual': routing leaves it there)."""
        auth.allow(caller, "work")
        history = await change(
            caller, ref, if_match, "move_to_queue", lambda t: t.move_to_queue(_actor(caller), body.queue, body.reason)
        )
        return _detail(history, response, caller)

    @router.post("/tickets/{ref}/close", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def close(ref: str, response: Response, caller: Who, if_match: IfMatch = None) -> TicketDetail:
        """Close a resolved ticket: it takes no more replies. Its owner or a lead may."""
        auth.allow(caller, "work")
        history = await change(caller, ref, if_match, "close", lambda t: t.close(_actor(caller)))
        return _detail(history, response, caller)

    @router.post("/tickets/{ref}/reopen", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def reopen(
        ref: str, body: Reopening, response: Response, caller: Who, if_match: IfMatch = None
    ) -> TicketDetail:
        """Reopen a resolved or closed ticket within TICKETS_REOPEN_WINDOW_S of its resolving or closing."""
        auth.allow(caller, "work")
        window = timedelta(seconds=settings.reopen_window_s)

        def decide(history: TicketHistory, _other: TicketHistory | None) -> Decision:
            finished_at = history.finished_at or datetime.now(UTC)  # not finished: the rule says so
            now = datetime.now(UTC)
            return history.ticket.reopen(
                _actor(caller), body.reason, now=now, finished_at=finished_at, window=window
            ), []

        history = await change_two(caller, ref, None, if_match, "reopen", decide)
        return _detail(history, response, caller)

    @router.post("/tickets/{ref}/merge", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def merge(ref: str, body: Merge, response: Response, caller: Who, if_match: IfMatch = None) -> TicketDetail:
        """Merge this ticket into another (``into``): this one becomes ``merged`` (terminal), the other
        records ``ticket.merge_received``. Its owner or a lead may; an unowned ticket, any agent.
        Answers this (the merged) ticket; If-Match is its version."""
        auth.allow(caller, "work")
        history = await change_two(
            caller,
            ref,
            body.into,
            if_match,
            "merge",
            lambda h, o: h.ticket.merge(_actor(caller), o.ticket, body.reason),
        )
        return _detail(history, response, caller)

    @router.post("/tickets/{ref}/links", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def link(
        ref: str, body: LinkRequest, response: Response, caller: Who, if_match: IfMatch = None
    ) -> TicketDetail:
        """Link this ticket to another (this ticket <kind> target); the target records the inverse link.
        A link already there changes nothing."""
        auth.allow(caller, "work")
        history = await change_two(
            caller, ref, body.target, if_match, "link", lambda h, o: h.ticket.link(_actor(caller), o.ticket, body.kind)
        )
        return _detail(history, response, caller)

    @router.delete("/tickets/{ref}/links/{target}", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def unlink(
        ref: str,
        target: str,
        kind: Annotated[LinkKind, Query(description="The kind of link to remove, as this ticket holds it.")],
        response: Response,
        caller: Who,
        if_match: IfMatch = None,
    ) -> TicketDetail:
        """Remove a link (and the target's inverse link). A link that is not there changes nothing."""
        auth.allow(caller, "work")
        history = await change_two(
            caller, ref, target, if_match, "unlink", lambda h, o: h.ticket.unlink(_actor(caller), o.ticket, kind)
        )
        return _detail(history, response, caller)

    async def change(
        caller: auth.Caller, ref: str, if_match: str | None, command: str, decide: Callable[[Ticket], list[TicketEvent]]
    ) -> TicketHistory:
        return await change_two(caller, ref, None, if_match, command, lambda h, _other: (decide(h.ticket), []))

    async def change_two(
        caller: auth.Caller,
        ref: str,
        other_ref: str | None,
        if_match: str | None,
        command: str,
        decide: Callable[[TicketHistory, TicketHistory | None], Decision],
    ) -> TicketHistory:
        """Decide on the ticket ``ref`` (and the ``other_ref`` one, if any) and store the events of both
        in one transaction; answers ``ref``'s history as it now is."""
        expected = _parse_if_match(if_match)
        # A merge or link also writes the other ticket, which the caller never named a version of:
        # another change to it meanwhile is no reason to refuse, so decide again on it as it now is.
        attempts = CONFLICT_ATTEMPTS if other_ref is not None else 1
        for attempt in range(1, attempts + 1):
            try:
                history, changed = await decided(caller, ref, other_ref, expected, decide)
                break
            except TicketRuleViolation as violation:
                COMMANDS.labels(command, "rejected").inc()
                status = 422 if violation.rule in INPUT_RULES else 409
                raise Problem(
                    status, "ticket-rule", "A ticket rule forbids this", violation.message, rule=violation.rule
                ) from None
            except ConcurrencyConflict:
                if attempt == attempts:
                    raise Problem(
                        409,
                        "concurrent-update",
                        "The ticket changed meanwhile",
                        "another change won; read it again and retry",
                    ) from None
        if changed:
            appended()
        COMMANDS.labels(command, "applied" if changed else "unchanged").inc()
        return history

    async def decided(
        caller: auth.Caller,
        ref: str,
        other_ref: str | None,
        expected: set[int] | None,
        decide: Callable[[TicketHistory, TicketHistory | None], Decision],
    ) -> tuple[TicketHistory, bool]:
        async with db.writer.begin() as conn:
            if other_ref is not None:
                # Appending takes this lock anyway; taking it before reading two tickets makes merges
                # into one busy ticket queue up instead of failing on each other (PostgreSQL; SQLite's
                # writers run one at a time already).
                await event_store.lock_for_append(conn)
            history = await _load(conn, ref, caller)
            _check_version(history, expected)
            other = await _load_other(conn, other_ref) if other_ref is not None else None
            mine, theirs = decide(history, other)
            new = _recorded(history, mine)
            changes = [Change.of(history.ticket, new)]
            if other is not None and theirs:
                changes.append(Change.of(other.ticket, _recorded(other, theirs)))
            await repository.save(conn, changes)
        return history.extended(new), bool(mine or theirs)

    return router


def _actor(caller: auth.Caller) -> Actor:
    return Actor(caller.id, lead=caller.lead)


async def _load(conn: AsyncConnection, ref: str, caller: auth.Caller) -> TicketHistory:
    """The ticket ``ref`` names, if the caller may see it: 404 alike for no such ticket and another customer's."""
    ticket_id = await repository.find(conn, ref)
    histories = await repository.load(conn, [ticket_id]) if ticket_id else {}
    if ticket_id not in histories:
        raise _not_found(ref)
    history = histories[ticket_id]  # type: ignore[index]
    if not auth.may_see(caller, history.ticket.customer.customer_id):
        raise _not_found(ref)
    return history


async def _load_other(conn: AsyncConnection, ref: str) -> TicketHistory:
    """The other ticket of a merge or link (only agents and integrations, who see every ticket, get here)."""
    ticket_id = await repository.find(conn, ref)
    histories = await repository.load(conn, [ticket_id]) if ticket_id else {}
    if ticket_id not in histories:
        raise Problem(404, "ticket-not-found", "No such ticket", f"no ticket {ref!r} to merge into or link to")
    return histories[ticket_id]  # type: ignore[index]


def _check_version(history: TicketHistory, expected: set[int] | None) -> None:
    version = history.ticket.version
    if expected is not None and version not in expected:
        tags = ", ".join(f'"{v}"' for v in sorted(expected))
        raise Problem(
            409,
            "stale-version",
            "The ticket has changed",
            f"{history.ticket.number} is at version {version}, not {tags}; read it again and decide on what it is now",
            headers={"ETag": f'"{version}"'},
            current_version=version,
        )


def _recorded(history: TicketHistory, events: Sequence[TicketEvent]) -> list[Envelope[Any]]:
    """A caller's decision as events: at this moment, on the trail of the contact that opened the ticket.

    (Like ``repository.recorded``, but it knows every ticket event through the contracts' registry.)
    """
    at = datetime.now(UTC)
    return [
        new_envelope(
            MESSAGE_OF_DATA[type(event)],
            event,
            ticket_id=history.ticket.ticket_id,
            correlation_id=history.correlation_id,
            occurred_at=at,
        )
        for event in events
    ]


def _as_of(history: TicketHistory, ref: str, moment: datetime) -> TicketHistory:
    """The ticket folded from the events that had happened by ``moment``; 404 before it was opened."""
    events = [e for e in history.events if e.occurred_at <= moment]
    if not events:
        raise Problem(404, "ticket-not-found", "No such ticket", f"{ref!r} was not yet opened at {moment.isoformat()}")
    return TicketHistory.of(history.ticket.ticket_id, events)


def _not_found(ref: str) -> Problem:
    detail = f"no ticket {ref!r} (give a ticket id or a number like HD-12)"
    return Problem(404, "ticket-not-found", "No such ticket", detail)


def _detail(history: TicketHistory, response: Response, caller: auth.Caller) -> TicketDetail:
    response.headers["ETag"] = f'"{history.ticket.version}"'
    ticket = history.ticket
    entries = [
        HistoryEntry(
            event_id=e.event_id,
            type=e.type,
            version=e.data.version,
            occurred_at=e.occurred_at,
            data=e.data.model_dump(mode="json"),
        )
        for e in history.events
    ]
    links = sorted(ticket.links, key=lambda link: (link.number, link.kind))
    detail = TicketDetail(
        **TicketView.model_validate(history.read_model_row()).model_dump(),
        links=[LinkView(kind=link.kind, ticket_id=link.ticket_id, number=link.number) for link in links],  # type: ignore[arg-type]
        merged_into=TicketRefView(**vars(ticket.merged_into)) if ticket.merged_into else None,
        attachments=attachment_views(e.data for e in history.events),  # a customer sees them all (customer_view)
        history=entries,
    )
    if caller.kind != "customer":
        return detail
    shown = customer_view.ticket(detail.model_dump(exclude={"history"}))
    story = [
        entry.model_copy(update={"data": customer_view.event_data(entry.type, entry.data)})
        for entry in detail.history
        if customer_view.sees_event(entry.type, entry.data)
    ]
    return TicketDetail(**shown, history=story)


def _view(view: TicketView, caller: auth.Caller) -> TicketView:
    """What the caller sees of a ticket: a customer, nothing of the desk's inner workings."""
    if caller.kind != "customer":
        return view
    return TicketView.model_validate(customer_view.ticket(view.model_dump()))


def _cursor(row: dict[str, Any]) -> str:
    """Opaque to clients: where the page ended (the last ticket's opening time and number)."""
    raw = json.dumps([row["opened_at"].isoformat(), row["number"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        opened_at, number = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(opened_at), str(number)
    except (ValueError, TypeError) as exc:
        raise Problem(
            400, "invalid-cursor", "Invalid cursor", "pass back the next_cursor of a previous page unchanged"
        ) from exc


def _parse_if_match(value: str | None) -> set[int] | None:
    """The versions an If-Match header accepts; None when any version will do."""
    if value is None or value.strip() == "*":
        return None
    versions = set()
    for tag in value.split(","):
        tag = tag.strip().strip('"')
        if not tag.isdigit():
            raise Problem(
                400, "invalid-if-match", "Invalid If-Match", f'If-Match must be an ETag like "3" (got {value!r})'
            )
        versions.add(int(tag))
    return versions
