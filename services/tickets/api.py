"""The ticket query and command API for agents' clients (``/v1``).

Every request carries an agent's token (``Authorization: Bearer <JWT>``); the
agent id recorded on a claim or resolution is the token's subject, never
anything in the request. A ticket is named by its id or its number (HD-12).

Writes use optimistic concurrency: a GET returns ``ETag: "<version>"``; a write
may send it back as ``If-Match`` and is refused with 412 if the ticket moved on
meanwhile. Without If-Match the write applies to the ticket as it is, and two
writers racing on it still cannot both win (the loser gets 409).
See docs/tickets-api.md.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations,
# which name dependency aliases local to tickets_router.


import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.sla import Deadline
from services.tickets import auth
from services.tickets.adapters import deadlines, read_model, repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.event_store import ConcurrencyConflict
from services.tickets.adapters.repository import Change, TicketHistory
from services.tickets.config import Settings
from services.tickets.domain import Actor, Status, TicketEvent, TicketRuleViolation
from services.tickets.metrics import COMMANDS
from services.tickets.problems import PROBLEM_JSON, Problem

# Rules about what the request says (it could never succeed) rather than about the ticket's state.
CONFLICT_ATTEMPTS = 5
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
    }
)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {PROBLEM_JSON: {}}}
    for code, text in {401: "No valid token", 403: "Token lacks an agent role", 404: "No such ticket"}.items()
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    409: {"description": "A ticket rule forbids it, or a concurrent change won", "content": {PROBLEM_JSON: {}}},
    412: {"description": "If-Match does not match the ticket's version", "content": {PROBLEM_JSON: {}}},
}


class HistoryEntry(BaseModel):
    event_id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    data: dict[str, Any]


class TicketView(BaseModel):
    ticket_id: uuid.UUID
    number: str
    version: int
    status: Status
    subject: str
    description: str
    channel: str
    channel_message_id: str = Field(description="The channel's own id of the contact that opened the ticket.")
    customer: dict[str, Any]
    components: list[str]
    priority: int | None
    queue: str | None
    level: int
    assignee: str | None
    opened_at: datetime
    updated_at: datetime
    resolution: str | None
    resolved_by: str | None
    flags: list[str] = Field(description="Flags raised on the ticket (e.g. sla_warning), sorted.")


class TicketDetail(TicketView):
    history: list[HistoryEntry] = Field(description="Every event of the ticket, oldest first.")


class TicketList(BaseModel):
    tickets: list[TicketView]
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next page; null on the last page."
    )


class QueueSummary(BaseModel):
    queue: str
    depth: int = Field(description="Tickets waiting in the queue for an agent (open, unclaimed).")
    oldest_opened_at: datetime | None = Field(description="When the longest-waiting ticket was opened.")
    oldest_age_s: float | None = Field(description="How long the longest-waiting ticket has waited, in seconds.")


class QueueList(BaseModel):
    queues: list[QueueSummary]


class TicketDeadlines(BaseModel):
    ticket_id: uuid.UUID
    number: str
    policy: str | None = Field(description="The SLA policy that applies; null until escalation has published one.")
    calendar: str | None = Field(description="The business-hours calendar the deadlines count in.")
    deadlines: list[Deadline]
    as_of: datetime | None = Field(description="When escalation computed these deadlines.")


class Resolution(BaseModel):
    resolution: str = Field(max_length=20_000, description="What was done: the customer is told this.")


class Note(BaseModel):
    text: str = Field(max_length=20_000)
    visibility: Literal["internal", "public"] = Field(
        default="internal", description="'public' notes are e-mailed to the customer; 'internal' ones never shown."
    )


class StatusChange(BaseModel):
    status: Literal["in_progress", "waiting_on_customer", "waiting_on_third_party"]


class PriorityChange(BaseModel):
    priority: int = Field(ge=1, le=5, description="1 is the most urgent.")
    reason: str = Field(max_length=5_000, description="Why routing's priority is overridden (recorded).")


class QueueMove(BaseModel):
    queue: str = Field(min_length=1, max_length=100)
    reason: str = Field(max_length=5_000)


class Reopening(BaseModel):
    reason: str = Field(max_length=5_000, description="Why the ticket is not done after all.")


def tickets_router(db: TicketDatabase, settings: Settings, appended: Callable[[], None]) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["tickets"])
    bearer = HTTPBearer(auto_error=False, description="An agent's JWT (HS256).")

    async def agent(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> auth.Agent:
        return authenticate(credentials, settings)

    Agent = Annotated[auth.Agent, Depends(agent)]
    IfMatch = Annotated[str | None, Header(description='The version from the ETag, e.g. "3".')]

    @router.get("/tickets/{ref}", response_model=TicketDetail, responses=ERRORS)
    async def get_ticket(
        ref: str,
        response: Response,
        _agent: Agent,
        as_of: Annotated[
            AwareDatetime | None, Query(description="Show the ticket as it stood at this moment (ISO 8601).")
        ] = None,
    ) -> TicketDetail:
        """A ticket with its whole history. ``ref`` is its id or its number (HD-12)."""
        async with db.reader.connect() as conn:
            history = await _load(conn, ref)
        if as_of is not None:
            history = _as_of(history, ref, as_of)
        return _detail(history, response)

    @router.get("/tickets/{ref}/deadlines", response_model=TicketDeadlines, responses=ERRORS)
    async def ticket_deadlines(ref: str, _agent: Agent) -> TicketDeadlines:
        """Every SLA deadline of the ticket, as the escalation service last computed them."""
        async with db.reader.connect() as conn:
            ticket_id = await repository.find(conn, ref)
            if ticket_id is None:
                raise _not_found(ref)
            row = await deadlines.of_ticket(conn, ticket_id)
            number = row["number"] if row else (await read_model.number_of(conn, ticket_id))
        if row is None:
            return TicketDeadlines(ticket_id=ticket_id, number=number, policy=None, calendar=None, deadlines=[], as_of=None)
        return TicketDeadlines(**row, as_of=row["occurred_at"])

    @router.get("/tickets", response_model=TicketList, responses=ERRORS)
    async def list_tickets(
        _agent: Agent,
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
        """Tickets, newest first; every filter given narrows the list. Page on with ``next_cursor``."""
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
            tickets=[TicketView.model_validate(r) for r in rows],
            next_cursor=_cursor(rows[-1]) if more else None,
        )

    @router.get("/queues/{queue}/tickets", response_model=TicketList, responses=ERRORS)
    async def queue_line(
        queue: str, _agent: Agent, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> TicketList:
        """The queue's unclaimed tickets in the order to take them: priority 1 first, then oldest first."""
        async with db.reader.connect() as conn:
            rows = await read_model.queue_line(conn, queue, limit)
        return TicketList(tickets=[TicketView.model_validate(r) for r in rows])

    @router.get("/queues", response_model=QueueList, responses=ERRORS)
    async def list_queues(_agent: Agent) -> QueueList:
        """Every queue with how many tickets wait in it and how long the oldest has waited."""
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
    async def take_next(queue: str, response: Response, agent: Agent) -> Any:
        """Claim the ticket at the head of the queue's line for the token's agent.

        Two agents asking at once never get the same ticket: each gets the next one
        still waiting. 204 when the line is empty.
        """
        for _attempt in range(CONFLICT_ATTEMPTS):
            try:
                history = await take_head(queue, agent.id)
            except ConcurrencyConflict:
                continue  # the head moved under us (claimed by hand meanwhile): take the next head
            if history is None:
                return Response(status_code=204)
            appended()
            COMMANDS.labels("take_next", "applied").inc()
            return _detail(history, response)
        raise Problem(409, "concurrent-update", "The queue changed meanwhile", "too many agents at once; retry")

    async def take_head(queue: str, agent_id: str) -> TicketHistory | None:
        async with db.writer.begin() as conn:
            ticket_id = await read_model.take_head_of_line(conn, queue)
            if ticket_id is None:
                return None
            history = (await repository.load(conn, [ticket_id]))[ticket_id]
            new = repository.recorded(
                ticket_id, history.ticket.claim(agent_id), at=datetime.now(UTC), correlation_id=history.correlation_id
            )
            await repository.save(conn, [Change.of(history.ticket, new)])
            return history.extended(new)

    @router.post("/tickets/{ref}/claim", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def claim(ref: str, response: Response, agent: Agent, if_match: IfMatch = None) -> TicketDetail:
        """Take the ticket; the token's agent becomes its owner. Claiming one's own ticket again changes nothing."""
        history = await change(ref, if_match, "claim", lambda h: h.ticket.claim(agent.id))
        return _detail(history, response)

    @router.post("/tickets/{ref}/resolve", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def resolve(
        ref: str, body: Resolution, response: Response, agent: Agent, if_match: IfMatch = None
    ) -> TicketDetail:
        """Resolve a ticket one owns (a lead may resolve any); the customer is told the resolution."""
        history = await change(
            ref, if_match, "resolve", lambda h: h.ticket.resolve(agent.id, body.resolution, lead=_actor(agent).lead)
        )
        return _detail(history, response)

    @router.post("/tickets/{ref}/release", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def release(ref: str, response: Response, agent: Agent, if_match: IfMatch = None) -> TicketDetail:
        """Put the ticket back in its queue, open and unowned. Its owner or a lead may."""
        history = await change(ref, if_match, "release", lambda h: h.ticket.release(_actor(agent)))
        return _detail(history, response)

    @router.post("/tickets/{ref}/notes", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def add_note(
        ref: str, body: Note, response: Response, agent: Agent, if_match: IfMatch = None
    ) -> TicketDetail:
        """Write a note on the ticket; the token's agent is its author. Public notes reach the customer."""
        history = await change(ref, if_match, "add_note", lambda h: h.ticket.add_note(agent.id, body.text, body.visibility))
        return _detail(history, response)

    @router.post("/tickets/{ref}/status", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def change_status(
        ref: str, body: StatusChange, response: Response, agent: Agent, if_match: IfMatch = None
    ) -> TicketDetail:
        """Say what the ticket waits for (waiting statuses pause SLA clocks). Its owner or a lead may."""
        status = Status(body.status)
        history = await change(ref, if_match, "change_status", lambda h: h.ticket.change_status(_actor(agent), status))
        return _detail(history, response)

    @router.post("/tickets/{ref}/priority", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def change_priority(
        ref: str, body: PriorityChange, response: Response, agent: Agent, if_match: IfMatch = None
    ) -> TicketDetail:
        """Override the priority, saying why (recorded as rule 'manual', by the token's agent)."""
        history = await change(
            ref, if_match, "change_priority", lambda h: h.ticket.change_priority(_actor(agent), body.priority, body.reason)
        )
        return _detail(history, response)

    @router.post("/tickets/{ref}/queue", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def move_to_queue(
        ref: str, body: QueueMove, response: Response, agent: Agent, if_match: IfMatch = None
    ) -> TicketDetail:
        """Move the ticket to another queue (rule 'manual': routing leaves it there)."""
        history = await change(
            ref, if_match, "move_to_queue", lambda h: h.ticket.move_to_queue(_actor(agent), body.queue, body.reason)
        )
        return _detail(history, response)

    @router.post("/tickets/{ref}/close", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def close(ref: str, response: Response, agent: Agent, if_match: IfMatch = None) -> TicketDetail:
        """Close a resolved ticket: it takes no more replies. Its owner or a lead may."""
        history = await change(ref, if_match, "close", lambda h: h.ticket.close(_actor(agent)))
        return _detail(history, response)

    @router.post("/tickets/{ref}/reopen", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def reopen(
        ref: str, body: Reopening, response: Response, agent: Agent, if_match: IfMatch = None
    ) -> TicketDetail:
        """Reopen a resolved or closed ticket within TICKETS_REOPEN_WINDOW_S of its resolving or closing."""
        window = timedelta(seconds=settings.reopen_window_s)

        def decide(history: TicketHistory) -> list[TicketEvent]:
            finished_at = history.finished_at or datetime.now(UTC)  # not finished: the rule says so
            return history.ticket.reopen(
                _actor(agent), body.reason, now=datetime.now(UTC), finished_at=finished_at, window=window
            )

        history = await change(ref, if_match, "reopen", decide)
        return _detail(history, response)

    async def change(
        ref: str, if_match: str | None, command: str, decide: Callable[[TicketHistory], list[TicketEvent]]
    ) -> TicketHistory:
        expected = _parse_if_match(if_match)
        try:
            async with db.writer.begin() as conn:
                history = await _load(conn, ref)
                if expected is not None and history.ticket.version not in expected:
                    raise Problem(
                        412,
                        "version-mismatch",
                        "The ticket has changed",
                        f"{history.ticket.number} is at version {history.ticket.version}, not {if_match}; "
                        "read it again and decide on what it is now",
                        headers={"ETag": f'"{history.ticket.version}"'},
                        version=history.ticket.version,
                    )
                events = decide(history)
                if events:
                    new = repository.recorded(
                        history.ticket.ticket_id, events, at=datetime.now(UTC), correlation_id=history.correlation_id
                    )
                    await repository.save(conn, [Change.of(history.ticket, new)])
                    history = history.extended(new)
        except TicketRuleViolation as violation:
            COMMANDS.labels(command, "rejected").inc()
            status = 422 if violation.rule in INPUT_RULES else 409
            raise Problem(
                status, "ticket-rule", "A ticket rule forbids this", violation.message, rule=violation.rule
            ) from None
        except ConcurrencyConflict:
            raise Problem(
                409, "concurrent-update", "The ticket changed meanwhile", "another change won; read it again and retry"
            ) from None
        if events:
            appended()
        COMMANDS.labels(command, "applied" if events else "unchanged").inc()
        return history

    return router


def _actor(agent: auth.Agent) -> Actor:
    return Actor(agent.id, lead="lead" in agent.roles)


def authenticate(credentials: HTTPAuthorizationCredentials | None, settings: Settings) -> auth.Agent:
    if credentials is None:
        raise Problem(
            401,
            "unauthenticated",
            "Authentication required",
            "send an agent's token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": 'Bearer realm="helpdesk"'},
        )
    try:
        return auth.verify(credentials.credentials, settings)
    except auth.InvalidCredential as exc:
        reason = str(exc).replace('"', "'")
        raise Problem(
            401,
            "invalid-token",
            "Invalid token",
            f"the token was refused: {reason}",
            headers={
                "WWW-Authenticate": f'Bearer realm="helpdesk", error="invalid_token", error_description="{reason}"'
            },
        ) from None
    except auth.NotAllowed as exc:
        raise Problem(403, "forbidden", "Not allowed", str(exc)) from None


async def _load(conn: AsyncConnection, ref: str) -> TicketHistory:
    ticket_id = await repository.find(conn, ref)
    histories = await repository.load(conn, [ticket_id]) if ticket_id else {}
    if ticket_id not in histories:
        raise _not_found(ref)
    return histories[ticket_id]  # type: ignore[index]


def _as_of(history: TicketHistory, ref: str, moment: datetime) -> TicketHistory:
    """The ticket folded from the events that had happened by ``moment``; 404 before it was opened."""
    events = [e for e in history.events if e.occurred_at <= moment]
    if not events:
        raise Problem(404, "ticket-not-found", "No such ticket", f"{ref!r} was not yet opened at {moment.isoformat()}")
    return TicketHistory.of(history.ticket.ticket_id, events)


def _not_found(ref: str) -> Problem:
    detail = f"no ticket {ref!r} (give a ticket id or a number like HD-12)"
    return Problem(404, "ticket-not-found", "No such ticket", detail)


def _detail(history: TicketHistory, response: Response) -> TicketDetail:
    response.headers["ETag"] = f'"{history.ticket.version}"'
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
    return TicketDetail(**history.read_model_row(), history=entries)


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
