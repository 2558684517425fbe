"""How ``helpdesk tickets show`` prints what the ticket service added: attachments, and why a status changed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from helpdesk_client.cli import output
from helpdesk_client.models import Attachment, TicketDetail
from rich.console import Console

AT = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def ticket(**changes: object) -> TicketDetail:
    fields: dict[str, object] = {
        "ticket_id": "00000000-0000-4000-8000-000000000001", "number": "HD-12", "version": 3, "status": "in_progress",
        "subject": "VPN error 809", "description": "", "channel": "email", "channel_message_id": "<m@x>",
        "customer": {"name": "Ada"}, "components": [], "priority": 2, "queue": "network", "level": 1,
        "assignee": "alice", "opened_at": AT, "updated_at": AT, "resolution": None, "resolved_by": None,
        "history": [],
    }  # fmt: skip
    return TicketDetail.model_validate(fields | changes)


def shown(monkeypatch: pytest.MonkeyPatch, detail: TicketDetail) -> str:
    console = Console(record=True, width=200, highlight=False)
    monkeypatch.setattr(output, "console", console)
    output.ticket_panel(detail)
    return console.export_text()


def test_the_ticket_view_lists_the_files_the_customer_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    files = [
        Attachment(filename="error.png", content_type="image/png", size_bytes=48_213, version=1, received_at=AT),
        Attachment(content_type="audio/ogg", version=4, received_at=AT),
    ]
    assert "attachments error.png (image/png, 47 KB, #1), unnamed (audio/ogg, #4)" in shown(
        monkeypatch, ticket(attachments=files)
    )


def test_a_status_change_the_desk_made_itself_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = {
        "event_id": "00000000-0000-4000-8000-0000000000e1", "type": "ticket.status_changed", "version": 5,
        "occurred_at": AT, "data": {"status": "in_progress", "previous_status": "waiting_on_customer",
                                    "by": "customer", "reason": "the customer replied by email"},
    }  # fmt: skip
    text = shown(monkeypatch, ticket(history=[entry]))
    assert "waiting_on_customer -> in_progress by customer: the customer replied by email" in text
