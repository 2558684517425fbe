"""How the command line shows things: rich tables for people, JSON for scripts.

Tables and colours go to a terminal; piped elsewhere rich drops the colours.
``--json`` prints the API's own answer (one JSON document; ``watch`` prints
one event per line), so scripts can rely on the API's field names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from helpdesk_client.models import (
    Attachment,
    HistoryEntry,
    QueueSummary,
    StreamEvent,
    TicketDeadlines,
    TicketDetail,
    TicketView,
)

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

STATUS_STYLE = {
    "open": "yellow",
    "in_progress": "cyan",
    "waiting_on_customer": "magenta",
    "waiting_on_third_party": "magenta",
    "resolved": "green",
    "closed": "dim",
    "merged": "dim",
}
PRIORITY_STYLE = {1: "bold red", 2: "red", 3: "yellow", 4: "", 5: "dim"}


def as_json(value: BaseModel | Iterable[BaseModel] | None) -> None:
    """Print the API's answer as JSON (``null`` for nothing) on stdout, plainly: no markup, no wrapping."""
    if value is None:
        data: Any = None
    elif isinstance(value, BaseModel):
        data = value.model_dump(mode="json")
    else:
        data = [v.model_dump(mode="json") for v in value]
    print(json.dumps(data, indent=2, ensure_ascii=False))


def json_line(value: BaseModel) -> None:
    print(value.model_dump_json(), flush=True)


def status(text: str) -> str:
    return f"[{STATUS_STYLE.get(text, '')}]{text}[/]" if STATUS_STYLE.get(text) else text


def priority(value: int | None) -> str:
    if value is None:
        return "-"
    style = PRIORITY_STYLE.get(value, "")
    return f"[{style}]P{value}[/]" if style else f"P{value}"


def when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def tickets_table(tickets: Iterable[TicketView], title: str | None = None) -> None:
    table = Table(title=title)
    for column in ("Ticket", "Pri", "Status", "Queue", "Assignee", "Opened (UTC)", "Subject"):
        table.add_column(column, no_wrap=column != "Subject")
    count = 0
    for t in tickets:
        count += 1
        table.add_row(
            t.number,
            priority(t.priority),
            status(t.status),
            escape(t.queue or "-"),
            escape(t.assignee or "-"),
            when(t.opened_at),
            escape(t.subject),
        )
    console.print(table if count else "[dim]No tickets.[/]")


def queues_table(queues: list[QueueSummary]) -> None:
    if not queues:
        console.print("[dim]No queues yet.[/]")
        return
    table = Table()
    for column in ("Queue", "Waiting", "Oldest waiting"):
        table.add_column(column, justify="right" if column != "Queue" else "left")
    for q in queues:
        table.add_row(escape(q.queue), str(q.depth), age(q.oldest_age_s))
    console.print(table)


def ticket_panel(ticket: TicketDetail) -> None:
    customer = ticket.customer
    who = customer.get("name") or customer.get("email") or customer.get("phone") or "unknown customer"
    console.print(f"[bold]{ticket.number}[/]  {escape(ticket.subject)}")
    console.print(
        f"  {status(ticket.status)}  {priority(ticket.priority)}  queue {escape(ticket.queue or '-')}"
        f"  level {ticket.level}  assignee {escape(ticket.assignee or '-')}  version {ticket.version}"
    )
    console.print(f"  customer {escape(str(who))}  channel {ticket.channel}  opened {when(ticket.opened_at)} UTC")
    if ticket.flags:
        console.print(f"  flags [red]{escape(', '.join(ticket.flags))}[/]")
    if ticket.merged_into:
        console.print(f"  merged into [bold]{ticket.merged_into.number}[/]")
    if ticket.links:
        console.print("  links " + ", ".join(f"{link.kind} {link.number}" for link in ticket.links))
    if ticket.attachments:
        console.print("  attachments " + escape(", ".join(attachment(a) for a in ticket.attachments)))
    if ticket.description:
        console.print(f"\n{escape(ticket.description)}")
    if ticket.resolution:
        console.print(f"\n[green]Resolution[/] ({escape(ticket.resolved_by or '-')}): {escape(ticket.resolution)}")
    timeline(ticket.history)


def attachment(file: Attachment) -> str:
    """``screenshot.png (image/png, 48 KB, #1)``: what it is, and which timeline entry brought it."""
    size = f", {max(1, round(file.size_bytes / 1024))} KB" if file.size_bytes is not None else ""
    return f"{file.filename or 'unnamed'} ({file.content_type}{size}, #{file.version})"


def timeline(history: list[HistoryEntry]) -> None:
    table = Table(title="Timeline")
    for column in ("#", "When (UTC)", "Event", "Details"):
        table.add_column(column, no_wrap=column != "Details")
    for entry in history:
        event = entry.type.removeprefix("ticket.")
        table.add_row(str(entry.version), when(entry.occurred_at), event, escape(describe(entry.type, entry.data)))
    console.print(table)


def describe(event_type: str, data: dict[str, Any]) -> str:
    """One line saying what an event did, from its data (unknown events: their fields)."""
    d = data
    match event_type:
        case "ticket.opened":
            return f"{d.get('subject', '')} (via {d.get('channel', '?')})"
        case "ticket.prioritised":
            return f"P{d.get('priority')} by {d.get('by')}: {d.get('reason', '')} [{d.get('rule', '')}]"
        case "ticket.routed":
            return f"to {d.get('queue')}: {d.get('reason', '')} [{d.get('rule', '')}]"
        case "ticket.claimed":
            return f"by {d.get('agent_id')}"
        case "ticket.assigned":
            return f"to {d.get('agent_id')} ({d.get('strategy')}): {d.get('reason', '')}"
        case "ticket.released":
            return f"by {d.get('released_by')} (was {d.get('previous_assignee')})"
        case "ticket.note_added":
            return f"{d.get('visibility')} note by {d.get('author')}: {d.get('text', '')}"
        case "ticket.customer_replied":
            return f"customer: {d.get('text', '')}"
        case "ticket.status_changed":
            why = f": {d['reason']}" if d.get("reason") else ""
            return f"{d.get('previous_status')} -> {d.get('status')} by {d.get('by')}{why}"
        case "ticket.resolved":
            return f"by {d.get('resolved_by')}: {d.get('resolution', '')}"
        case "ticket.closed":
            return f"by {d.get('closed_by')}"
        case "ticket.reopened":
            return f"by {d.get('reopened_by')}: {d.get('reason', '')}"
        case "ticket.escalated":
            return f"to level {d.get('level')}, queue {d.get('queue')}: {d.get('reason', '')}"
        case "ticket.flagged":
            return f"{d.get('flag')} by {d.get('raised_by')}: {d.get('reason', '')}"
        case "ticket.merged":
            return f"into {d.get('into_number')} by {d.get('merged_by')}: {d.get('reason', '')}"
        case "ticket.merge_received":
            return f"{d.get('from_number')} merged in by {d.get('merged_by')}"
        case "ticket.linked" | "ticket.unlinked":
            return f"{d.get('kind')} {d.get('target_number')}"
    rest = {k: v for k, v in d.items() if k not in ("number", "version")}
    return ", ".join(f"{k}={v}" for k, v in rest.items())


def deadlines_table(deadlines: TicketDeadlines) -> None:
    if deadlines.policy is None:
        console.print(f"{deadlines.number}: [dim]no SLA deadlines yet[/]")
        return
    console.print(
        f"{deadlines.number}: policy {escape(deadlines.policy)}, calendar {escape(deadlines.calendar or '-')}"
    )
    table = Table()
    for column in ("Deadline", "State", "Due (UTC)", "Warn at (UTC)"):
        table.add_column(column)
    for d in deadlines.deadlines:
        kind = f"{d.kind} (level {d.level})" if d.level else d.kind
        style = {"breached": "bold red", "met": "green", "paused": "magenta"}.get(d.state, "")
        state = f"[{style}]{d.state}[/]" if style else d.state
        table.add_row(kind, state, when(d.due_at), when(d.warn_at))
    console.print(table)


def changed(ticket: TicketDetail, what: str) -> None:
    """One line after a change: what happened and where the ticket stands now."""
    console.print(
        f"[bold]{ticket.number}[/] {what}: {status(ticket.status)} {priority(ticket.priority)}"
        f" queue {escape(ticket.queue or '-')} assignee {escape(ticket.assignee or '-')} (version {ticket.version})"
    )


def stream_event(event: StreamEvent) -> None:
    payload = event.data.get("data") if isinstance(event.data.get("data"), dict) else {}
    moment = event.data.get("occurred_at", "")
    console.print(
        f"[dim]{str(moment)[:19]}[/] [bold]{event.number or '-'}[/] {event.type.removeprefix('ticket.')}"
        f"  {escape(describe(event.type, payload or {}))}"
    )
