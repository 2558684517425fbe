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


import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tickets import auth
from services.tickets.adapters import read_model, repository
from services.tickets.adapters.database import TicketDatabase
from services.tickets.adapters.event_store import ConcurrencyConflict
from services.tickets.adapters.repository import Change, TicketHistory
from services.tickets.config import Settings
from services.tickets.domain import Status, Ticket, TicketEvent, TicketRuleViolation
from services.tickets.metrics import COMMANDS
from services.tickets.problems import PROBLEM_JSON, Problem

# Rules about what the request says (it could never succeed) rather than about the ticket's state.
INPUT_RULES = frozenset({"resolution_required", "agent_required", "priority_out_of_range", "queue_required"})
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


class TicketDetail(TicketView):
    history: list[HistoryEntry] = Field(description="Every event of the ticket, oldest first.")


class TicketList(BaseModel):
    tickets: list[TicketView]


class Resolution(BaseModel):
    resolution: str = Field(max_length=20_000, description="What was done: the customer is told this.")


def tickets_router(db: TicketDatabase, settings: Settings, appended: Callable[[], None]) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["tickets"])
    bearer = HTTPBearer(auto_error=False, description="An agent's JWT (HS256).")

    async def agent(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> auth.Agent:
        return authenticate(credentials, settings)

    Agent = Annotated[auth.Agent, Depends(agent)]
    IfMatch = Annotated[str | None, Header(description='The version from the ETag, e.g. "3".')]

    @router.get("/tickets/{ref}", response_model=TicketDetail, responses=ERRORS)
    async def get_ticket(ref: str, response: Response, _agent: Agent) -> TicketDetail:
        """A ticket with its whole history. ``ref`` is its id or its number (HD-12)."""
        async with db.reader.connect() as conn:
            history = await _load(conn, ref)
        return _detail(history, response)

    @router.get("/tickets", response_model=TicketList, responses=ERRORS)
    async def list_tickets(
        _agent: Agent,
        status: Status | None = None,
        queue: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
        channel: Annotated[str | None, Query(min_length=1, max_length=20)] = None,
        channel_message_id: Annotated[
            str | None, Query(min_length=1, max_length=200, description="Find the ticket a contact opened.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> TicketList:
        """Tickets, newest first."""
        async with db.reader.connect() as conn:
            rows = await read_model.list_tickets(
                conn, status=status, queue=queue, limit=limit, channel=channel, channel_message_id=channel_message_id
            )
        return TicketList(tickets=[TicketView.model_validate(r) for r in rows])

    @router.get("/queues/{queue}/tickets", response_model=TicketList, responses=ERRORS)
    async def queue_line(
        queue: str, _agent: Agent, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> TicketList:
        """The queue's unclaimed tickets in the order to take them: priority 1 first, then oldest first."""
        async with db.reader.connect() as conn:
            rows = await read_model.queue_line(conn, queue, limit)
        return TicketList(tickets=[TicketView.model_validate(r) for r in rows])

    @router.post("/tickets/{ref}/claim", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def claim(ref: str, response: Response, agent: Agent, if_match: IfMatch = None) -> TicketDetail:
        """Take the ticket; the token's agent becomes its owner. Claiming one's own ticket again changes nothing."""
        history = await change(ref, if_match, "claim", lambda t: t.claim(agent.id))
        return _detail(history, response)

    @router.post("/tickets/{ref}/resolve", response_model=TicketDetail, responses=WRITE_ERRORS)
    async def resolve(
        ref: str, body: Resolution, response: Response, agent: Agent, if_match: IfMatch = None
    ) -> TicketDetail:
        """Resolve a ticket one owns; the customer is told the resolution."""
        history = await change(ref, if_match, "resolve", lambda t: t.resolve(agent.id, body.resolution))
        return _detail(history, response)

    async def change(
        ref: str, if_match: str | None, command: str, decide: Callable[[Ticket], list[TicketEvent]]
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
                events = decide(history.ticket)
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
        detail = f"no ticket {ref!r} (give a ticket id or a number like HD-12)"
        raise Problem(404, "ticket-not-found", "No such ticket", detail)
    return histories[ticket_id]  # type: ignore[index]


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
