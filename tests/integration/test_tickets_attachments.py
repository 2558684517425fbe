"""What intake parsed of a contact's files reaches the ticket: stored in its events, shown on it, to agents and to its customer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.envelope import new_envelope
from contracts.incidents import Attachment, Channel, CustomerProfile, IncidentIdentified, IncidentIdentifiedData
from runtime.consumer import Delivery
from services.tickets.adapters import event_store
from services.tickets.handlers import open_tickets
from tests.integration.test_tickets_api import Desk, desk  # noqa: F401 - the fixture

SCREENSHOT = Attachment(filename="vpn-error.png", content_type="image/png", size_bytes=48_213)
LOG = Attachment(filename="client.log", content_type="text/plain", size_bytes=1_024)
VOICE = Attachment(content_type="audio/ogg")  # an MMS or a Messenger voice note: no name, no size


def contact(message_id: str, attachments: list[Attachment], reply_to: str | None = None) -> IncidentIdentified:
    data = IncidentIdentifiedData(
        channel=Channel.EMAIL,
        channel_message_id=message_id,
        received_at=datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
        subject="VPN error 809",
        description="See the screenshot",
        customer=CustomerProfile(identified=True, identified_by="email", customer_id="c-9", email="ada@example.com"),
        attachments=attachments,
        reply_to_number=reply_to,
    )
    return new_envelope(IncidentIdentified, data)  # type: ignore[return-value]


async def receive(desk: Desk, message: IncidentIdentified) -> None:
    await open_tickets(desk.db, lambda: None)([Delivery(message, "t", 0, 0, None)])


async def test_files_sent_with_the_contact_and_with_a_reply_are_shown_on_the_ticket_to_agents_and_its_customer(
    desk: Desk,
) -> None:
    opening = f"<{uuid.uuid4().hex}@example.com>"
    await receive(desk, contact(opening, [SCREENSHOT, VOICE]))
    [listed] = (await desk.http.get("/v1/tickets", params={"channel_message_id": opening}, headers=desk.auth())).json()[
        "tickets"
    ]
    number = listed["number"]
    await receive(desk, contact("<reply@example.com>", [LOG], reply_to=number))

    for caller in (desk.auth(), desk.customer("c-9")):
        ticket = (await desk.http.get(f"/v1/tickets/{number}", headers=caller)).json()
        assert [(a["filename"], a["content_type"], a["size_bytes"], a["version"]) for a in ticket["attachments"]] == [
            ("vpn-error.png", "image/png", 48_213, 1),
            (None, "audio/ogg", None, 1),
            ("client.log", "text/plain", 1_024, 2),
        ]
        opened, replied = (e for e in ticket["history"] if e["type"] in ("ticket.opened", "ticket.customer_replied"))
        assert opened["data"]["attachments"][0] == SCREENSHOT.model_dump(mode="json")
        assert replied["data"]["attachments"] == [LOG.model_dump(mode="json")]


async def test_a_contact_without_files_is_stored_as_it_always_was(desk: Desk) -> None:
    await receive(desk, contact(f"<{uuid.uuid4().hex}@example.com>", []))
    async with desk.db.reader.connect() as conn:
        [stored] = await event_store.read_rows_after(conn, 0, 10)
    # Consumers not yet upgraded forbid unknown fields: an empty list is not written at all.
    assert "attachments" not in stored.data
