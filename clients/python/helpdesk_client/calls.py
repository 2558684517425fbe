"""Every API call once: its method, path, parameters and how its answer is read.

The sync and the async client both send these; only the sending differs.
A write given ``expected_version`` carries it as ``If-Match: "<version>"``.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx

from helpdesk_client.models import QueueList, TicketDeadlines, TicketDetail, TicketList

Status = Literal["in_progress", "waiting_on_customer", "waiting_on_third_party"]
LinkKind = Literal["relates_to", "duplicate_of", "duplicated_by", "parent_of", "child_of", "caused_by", "causes"]
LINK_KINDS: tuple[str, ...] = typing.get_args(LinkKind)
STATUSES: tuple[str, ...] = typing.get_args(Status)
Params = list[tuple[str, str]]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    read: Callable[[httpx.Response], Any]
    params: Params = field(default_factory=list)
    body: dict[str, Any] | None = None
    expected_version: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"If-Match": f'"{self.expected_version}"'} if self.expected_version is not None else {}

    @property
    def repeatable(self) -> bool:
        """Safe to send again after a failure that may have happened after the server acted.

        A read always is. A write is when it names the version it expects: if the
        first attempt took effect, the repeat is refused as stale instead of
        applied twice. Other writes (a note, take-next) are repeated only when the
        request surely never reached the server (the connection was refused).
        """
        return self.method == "GET" or self.expected_version is not None


def _ticket(response: httpx.Response) -> TicketDetail:
    return TicketDetail.model_validate_json(response.content)


def _ref(ref: str) -> str:
    return quote(str(ref), safe="")


def _write(ref: str, action: str, body: dict[str, Any] | None, expected_version: int | None) -> Call:
    return Call(
        "POST",
        f"/v1/tickets/{_ref(ref)}/{action}",
        _ticket,
        body=body,
        expected_version=expected_version,
    )


def get_ticket(ref: str, as_of: datetime | None = None) -> Call:
    params = [("as_of", _instant(as_of))] if as_of is not None else []
    return Call("GET", f"/v1/tickets/{_ref(ref)}", _ticket, params=params)


def list_page(filters: dict[str, Any], cursor: str | None, page_size: int) -> Call:
    params = _filters(filters) + [("limit", str(page_size))]
    if cursor:
        params.append(("cursor", cursor))
    return Call(
        "GET",
        "/v1/tickets",
        lambda r: TicketList.model_validate_json(r.content),
        params=params,
    )


def queues() -> Call:
    return Call("GET", "/v1/queues", lambda r: QueueList.model_validate_json(r.content).queues)


def queue_line(queue: str, limit: int) -> Call:
    read = lambda r: TicketList.model_validate_json(r.content).tickets
    return Call("GET", f"/v1/queues/{_ref(queue)}/tickets", read, params=[("limit", str(limit))])


def take_next(queue: str) -> Call:
    read = lambda r: None if r.status_code == 204 else _ticket(r)
    return Call("POST", f"/v1/queues/{_ref(queue)}/take-next", read)


def deadlines(ref: str) -> Call:
    return Call(
        "GET",
        f"/v1/tickets/{_ref(ref)}/deadlines",
        lambda r: TicketDeadlines.model_validate_json(r.content),
    )


def claim(ref: str, expected_version: int | None) -> Call:
    return _write(ref, "claim", None, expected_version)


def release(ref: str, expected_version: int | None) -> Call:
    return _write(ref, "release", None, expected_version)


def add_note(ref: str, text: str, public: bool, expected_version: int | None) -> Call:
    body = {"text": text, "visibility": "public" if public else "internal"}
    return _write(ref, "notes", body, expected_version)


def change_status(ref: str, status: str, expected_version: int | None) -> Call:
    return _write(ref, "status", {"status": status}, expected_version)


def assign(ref: str, agent_id: str, reason: str, expected_version: int | None) -> Call:
    return _write(ref, "assignment", {"agent_id": agent_id, "reason": reason}, expected_version)


def change_priority(ref: str, priority: int, reason: str, expected_version: int | None) -> Call:
    return _write(ref, "priority", {"priority": priority, "reason": reason}, expected_version)


def move_queue(ref: str, queue: str, reason: str, expected_version: int | None) -> Call:
    return _write(ref, "queue", {"queue": queue, "reason": reason}, expected_version)


def resolve(ref: str, resolution: str, expected_version: int | None) -> Call:
    return _write(ref, "resolve", {"resolution": resolution}, expected_version)


def close(ref: str, expected_version: int | None) -> Call:
    return _write(ref, "close", None, expected_version)


def reopen(ref: str, reason: str, expected_version: int | None) -> Call:
    return _write(ref, "reopen", {"reason": reason}, expected_version)


def merge(ref: str, into: str, reason: str, expected_version: int | None) -> Call:
    return _write(ref, "merge", {"into": str(into), "reason": reason}, expected_version)


def link(ref: str, target: str, kind: str, expected_version: int | None) -> Call:
    return _write(ref, "links", {"target": str(target), "kind": kind}, expected_version)


def unlink(ref: str, target: str, kind: str, expected_version: int | None) -> Call:
    path = f"/v1/tickets/{_ref(ref)}/links/{_ref(target)}"
    return Call(
        "DELETE",
        path,
        _ticket,
        params=[("kind", kind)],
        expected_version=expected_version,
    )


def stream_params(queue: str | Iterable[str] | None, ticket: str | None) -> Params:
    queues = [queue] if isinstance(queue, str) else list(queue or [])
    params = [("queue", q) for q in queues]
    if ticket:
        params.append(("ticket", str(ticket)))
    return params


# list_tickets' filters and the query parameters they become.
FILTERS = {
    "status": "status",
    "queue": "queue",
    "priority": "priority",
    "assignee": "assignee",
    "customer": "customer",
    "channel": "channel",
    "channel_message_id": "channel_message_id",
    "opened_after": "opened_after",
    "opened_before": "opened_before",
    "updated_after": "updated_after",
    "updated_before": "updated_before",
    "q": "q",
}


def _filters(filters: dict[str, Any]) -> Params:
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise TypeError(f"unknown ticket filter(s): {', '.join(sorted(unknown))}; known: {', '.join(FILTERS)}")
    params = []
    for name, value in filters.items():
        if value is None:
            continue
        params.append(
            (
                FILTERS[name],
                _instant(value) if isinstance(value, datetime) else str(value),
            )
        )
    return params


def _instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("give an aware datetime (with a time zone): the API refuses naive ones")
    return moment.isoformat()
