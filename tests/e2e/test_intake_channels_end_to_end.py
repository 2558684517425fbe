"""Every intake channel, end to end into a ticket: intake and the ticket service in-process over the real broker.

For each channel a real peer makes contact (mail over SMTP, a signed Twilio
form post, a WebSocket chat through uvicorn, signed Meta deliveries, REST,
CTI call events, a message published straight onto the topic). The contact
must become an open ticket in the ticket service, its customer identified
from the directory and enriched; then the customer answers on the same
channel and the answer must be recorded on that ticket as
``ticket.customer_replied``. One intake and one ticket service serve the
whole module.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiosmtplib
import httpx
import pytest
import uvicorn
from websockets.asyncio.client import connect as websocket

import services.intake.bootstrap as intake_service
import services.tickets.bootstrap as ticket_service
from contracts.topics import INCIDENTS_REPORTED, TICKET_EVENTS_TOPIC
from runtime.settings import CommonSettings
from runtime.topics_admin import ensure_topics
from services.intake.channels.twilio import signature
from services.intake.config import Settings as IntakeSettings
from tests.support.tokens import AUTH, mint
from services.tickets.config import Settings as TicketSettings
from tests.support.kafka import group_lag, incident, produce, read_all, wait_for

ROOT = Path(__file__).resolve().parents[2]
META_SECRET = "meta-app-secret-e2e"
TWILIO_TOKEN = "twilio-token-e2e"
PUBLIC = "https://helpdesk.example.com"
KEY = "crm-key-e2e"
RELAY = "mx.helpdesk.example"  # the receiving relay whose Authentication-Results intake believes
# The directory: the example's five customers, and one known by her Facebook ids.
SOCIAL_CUSTOMER = """
  - user_id: u-2001
    name: Mary Somerville
    email: mary.somerville@example.com
    social_handles: ["facebook:7001", "facebook:9001"]
    location: Edinburgh office
    department: Support
    software: [Facebook Business Suite]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Desk:
    """Intake's ways in, and the ticket service's API to see what came of them."""

    bootstrap: str
    prefix: str
    intake: httpx.AsyncClient
    tickets: httpx.AsyncClient
    smtp_port: int
    http_port: int

    async def ticket_for(self, channel: str, channel_message_id: str) -> dict[str, Any]:
        """The ticket the contact opened, with its history (waits for it)."""

        async def found() -> dict[str, Any] | None:
            params = {"channel": channel, "channel_message_id": channel_message_id}
            listed = (await self.tickets.get("/v1/tickets", params=params)).json()["tickets"]
            return listed[0] if listed else None

        ticket = await wait_for(found, timeout=30)
        return (await self.tickets.get(f"/v1/tickets/{ticket['number']}")).json()

    async def reply_recorded(self, number: str, channel_message_id: str) -> dict[str, Any]:
        """The ``ticket.customer_replied`` event of that reply on ticket ``number`` (waits for it)."""

        async def recorded() -> dict[str, Any] | None:
            history = (await self.tickets.get(f"/v1/tickets/{number}")).json()["history"]
            replies = [e for e in history if e["type"] == "ticket.customer_replied"]
            return next((e for e in replies if e["data"]["channel_message_id"] == channel_message_id), None)

        return await wait_for(recorded, timeout=30)

    async def intake_knows_the_ticket(self, number: str) -> None:
        """Wait until the ticket's opening is on the ticket events and intake has read them (it learns the
        conversations' tickets from them)."""
        topic = self.prefix + TICKET_EVENTS_TOPIC.name

        async def relayed() -> bool:
            events = [json.loads(r.value) for r in await read_all(self.bootstrap, topic, timeout=5)]
            return any(e["type"] == "ticket.opened" and e["data"]["number"] == number for e in events)

        async def caught_up() -> bool:
            return await group_lag(self.bootstrap, self.prefix + "helpdesk-intake-tickets", topic) == 0

        await wait_for(relayed, timeout=30)
        await wait_for(caught_up, timeout=30)

    async def meta(self, document: dict[str, Any]) -> httpx.Response:
        body = json.dumps(document).encode()
        signed = "sha256=" + hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signed}
        return await self.intake.post("/v1/channels/social/meta", content=body, headers=headers)

    async def sms(self, sid: str, sender: str, body: str) -> httpx.Response:
        path = "/v1/channels/sms/twilio"
        form = [("MessageSid", sid), ("AccountSid", "AC0"), ("From", sender), ("To", "+441234567890"),
                ("Body", body), ("NumMedia", "0")]  # fmt: skip
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": signature(TWILIO_TOKEN, PUBLIC + path, form)}  # fmt: skip
        return await self.intake.post(path, content=urlencode(form), headers=headers)

    async def mail(self, subject: str, sender: str, files: dict[str, tuple[str, bytes]] | None = None) -> str:
        """Send a mail over SMTP (``files``: name -> (MIME type, content)); its Message-ID (the channel message id)."""
        message = EmailMessage()
        message["Authentication-Results"] = f"{RELAY}; dmarc=pass header.from=example.com"  # as the relay adds it
        message["From"], message["To"], message["Subject"] = sender, "helpdesk@example.com", subject
        message["Message-ID"] = f"<{uuid.uuid4().hex}@mail.example.com>"
        message.set_content("Details in the subject.")
        for name, (mime_type, content) in (files or {}).items():
            maintype, subtype = mime_type.split("/")
            message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
        await aiosmtplib.send(message, hostname="127.0.0.1", port=self.smtp_port, timeout=15)
        return message["Message-ID"]


def opened_for(ticket: dict[str, Any], customer_id: str) -> dict[str, Any]:
    """Check the ticket was opened for the identified, enriched customer; its customer."""
    assert ticket["status"] == "open" and ticket["history"][0]["type"] == "ticket.opened"
    customer = ticket["customer"]
    assert (customer["identified"], customer["customer_id"]) == (True, customer_id)
    assert customer["name"] and customer["department"] and customer["location"]  # enriched from the directory
    return customer


@pytest.fixture(scope="module")
async def desk(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Desk]:
    state = tmp_path_factory.mktemp("channels")
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix, partitions=3)
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=prefix, kafka_retry_backoff_ms=10
    )
    directory = state / "directory.yaml"
    directory.write_text((ROOT / "services/intake/directory.example.yaml").read_text() + SOCIAL_CUSTOMER)
    smtp_port, http_port = free_port(), free_port()
    intake_settings = IntakeSettings(
        directory_file=directory,
        database_url=f"sqlite+aiosqlite:///{state / 'intake.db'}",
        smtp_port=smtp_port,
        public_url=PUBLIC,
        twilio_auth_token=TWILIO_TOKEN,
        meta_app_secret=META_SECRET,
        api_keys=f"crm={KEY}",
        wait_for_ticket_s=20,
        mail_trusted_authserv_ids=RELAY,
    )
    ticket_settings = TicketSettings(
        database_url=f"sqlite+aiosqlite:///{state / 'tickets.db'}", relay_poll_interval_ms=20
    )
    intake = intake_service.build(common, intake_settings)
    tickets = ticket_service.build(common, ticket_settings, AUTH)
    # The chat widget's real WebSocket: uvicorn serves intake's app (its lifespan is run below).
    server = uvicorn.Server(
        uvicorn.Config(intake.app, host="127.0.0.1", port=http_port, lifespan="off", log_level="warning")
    )
    async with tickets._lifespan(tickets.app), intake._lifespan(intake.app):
        serving = asyncio.create_task(server.serve())
        await wait_for(lambda: server.started, timeout=10)
        agent = {"Authorization": f"Bearer {mint('alice')}"}
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=intake.app), base_url="http://intake", headers={"X-API-Key": KEY}
            ) as intake_http,  # fmt: skip
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=tickets.app), base_url="http://tickets", headers=agent
            ) as tickets_http,  # fmt: skip
        ):
            await wait_for(lambda: _listening(smtp_port), timeout=10)
            yield Desk(kafka_bootstrap, prefix, intake_http, tickets_http, smtp_port, http_port)
        server.should_exit = True
        await asyncio.wait_for(serving, 30)  # uvicorn waits for open connections (a chat left open): bounded


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_email_over_smtp_opens_a_ticket_and_a_reply_mail_is_recorded_on_it(desk: Desk) -> None:
    sender = "Grace Hopper <grace.hopper@example.com>"
    opening = await desk.mail("Docker will not start after the update", sender)
    ticket = await desk.ticket_for("email", opening)
    assert opened_for(ticket, "u-1002")["software"]  # the configuration came from the directory

    reply = await desk.mail(f"Re: [{ticket['number']}] Docker will not start after the update", sender)
    await desk.reply_recorded(ticket["number"], reply)


async def test_the_files_of_an_email_are_listed_on_the_ticket_it_opens(desk: Desk) -> None:
    screenshot = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    files = {"error-809.png": ("image/png", screenshot), "vpn.log": ("text/plain", b"dial failed: 809\n")}
    opening = await desk.mail("VPN error 809 since this morning", "Grace Hopper <grace.hopper@example.com>", files)
    ticket = await desk.ticket_for("email", opening)
    assert [(a["filename"], a["content_type"], a["size_bytes"]) for a in ticket["attachments"]] == [
        ("error-809.png", "image/png", len(screenshot)),
        ("vpn.log", "text/plain", len(b"dial failed: 809\n")),
    ]
    assert ticket["history"][0]["data"]["attachments"] == [
        {k: v for k, v in a.items() if k in ("filename", "content_type", "size_bytes")} for a in ticket["attachments"]
    ]


async def test_a_signed_twilio_sms_opens_a_ticket_and_an_sms_naming_it_is_recorded_on_it(desk: Desk) -> None:
    opening = f"SM{uuid.uuid4().hex}"
    assert (await desk.sms(opening, "07700 900123", "Laptop will not boot")).status_code == 200
    ticket = await desk.ticket_for("sms", opening)
    assert opened_for(ticket, "u-1002")["phone"] == "+447700900123"

    reply = f"SM{uuid.uuid4().hex}"
    assert (await desk.sms(reply, "+44 7700 900123", f"{ticket['number']}: still not booting")).status_code == 200
    await desk.reply_recorded(ticket["number"], reply)


async def test_a_websocket_chat_opens_an_unverified_ticket_and_later_lines_are_recorded_on_it(desk: Desk) -> None:
    conversation = uuid.uuid4().hex
    async with websocket(f"ws://127.0.0.1:{desk.http_port}/v1/channels/chat") as chat:
        await chat.send(json.dumps({"type": "start", "conversation_id": conversation, "text": "VPN drops every hour",
                                    "contact": {"email": "Ada.Lovelace@example.com"}}))  # fmt: skip
        frames = [json.loads(await asyncio.wait_for(chat.recv(), 30)) for _ in range(2)]
        by_type = {f["type"]: f for f in frames}
        assert sorted(by_type) == ["accepted", "ticket"]
        number = by_type["ticket"]["number"]
        await chat.send(json.dumps({"type": "line", "id": "2", "text": "Restarted, still dropping"}))
        assert json.loads(await asyncio.wait_for(chat.recv(), 30))["type"] == "accepted"

    ticket = await desk.ticket_for("chat", conversation)
    assert ticket["number"] == number
    customer = ticket["customer"]  # the widget is public: the agent sees what it said, marked unverified
    assert (customer["verified"], customer["identified"], customer["vip"]) == (False, False, False)
    assert customer["email"] == "Ada.Lovelace@example.com"
    recorded = await desk.reply_recorded(number, f"{conversation}/2")
    assert recorded["data"]["text"] == "Restarted, still dropping"


async def test_a_signed_messenger_message_opens_a_ticket_and_a_message_naming_it_is_recorded_on_it(
    desk: Desk,
) -> None:
    def message(mid: str, text: str) -> dict[str, Any]:
        event = {
            "sender": {"id": "7001"},
            "recipient": {"id": "PAGE"},
            "timestamp": 1,
            "message": {"mid": mid, "text": text},
        }
        return {"object": "page", "entry": [{"id": "PAGE", "time": 1, "messaging": [event]}]}

    opening = f"m_{uuid.uuid4().hex}"
    assert (await desk.meta(message(opening, "Card reader offline in store 12"))).status_code == 200
    ticket = await desk.ticket_for("social", opening)
    assert opened_for(ticket, "u-2001")["location"] == "Edinburgh office"

    reply = f"m_{uuid.uuid4().hex}"
    assert (await desk.meta(message(reply, f"Any news on {ticket['number']}?"))).status_code == 200
    await desk.reply_recorded(ticket["number"], reply)


async def test_a_signed_page_comment_mention_opens_a_ticket_and_a_comment_naming_it_is_recorded_on_it(
    desk: Desk,
) -> None:
    def comment(comment_id: str, text: str) -> dict[str, Any]:
        value = {"item": "comment", "verb": "add", "post_id": "100_200", "comment_id": comment_id, "message": text,
                 "created_time": 1773480000, "from": {"id": "9001", "name": "Mary Somerville"}}  # fmt: skip
        return {"object": "page", "entry": [{"id": "100", "time": 1, "changes": [{"field": "feed", "value": value}]}]}

    opening = f"200_{uuid.uuid4().int % 10**12}"
    assert (await desk.meta(comment(opening, "Your checkout rejects every card"))).status_code == 200
    ticket = await desk.ticket_for("social", f"facebook:comment:{opening}")
    opened_for(ticket, "u-2001")

    reply = f"200_{uuid.uuid4().int % 10**12}"
    assert (await desk.meta(comment(reply, f"Still broken, {ticket['number']}"))).status_code == 200
    await desk.reply_recorded(ticket["number"], f"facebook:comment:{reply}")


async def test_an_instagram_mention_with_only_ids_opens_an_unidentified_ticket_an_agent_can_open_the_post_from(
    desk: Desk,
) -> None:
    comment_id = str(uuid.uuid4().int)[:17]
    value = {"media_id": "17918195224117851", "comment_id": comment_id}
    delivery = {
        "object": "instagram",
        "entry": [{"id": "1784", "time": 1, "changes": [{"field": "mentions", "value": value}]}],
    }
    assert (await desk.meta(delivery)).status_code == 200
    ticket = await desk.ticket_for("social", f"instagram:comment:{comment_id}")
    assert ticket["status"] == "open" and ticket["customer"]["identified"] is False
    assert comment_id in ticket["description"] and "17918195224117851" in ticket["description"]


async def test_a_rest_post_opens_a_ticket_and_a_post_naming_it_is_recorded_on_it(desk: Desk) -> None:
    opening = f"web-{uuid.uuid4().hex}"
    body = {"channel_message_id": opening, "contact": {"phone": "(0161) 496-0742"}, "subject": "MATLAB licence expired"}
    assert (await desk.intake.post("/v1/incidents", json=body)).status_code == 202
    ticket = await desk.ticket_for("web", opening)
    assert opened_for(ticket, "u-1003")["hardware"] == ["Dell Precision 5680"]

    reply = f"web-{uuid.uuid4().hex}"
    answer = {"channel_message_id": reply, "contact": {"email": "alan.turing@example.com"}, "subject": "Renewed?",
              "reply_to_number": ticket["number"]}  # fmt: skip
    assert (await desk.intake.post("/v1/incidents", json=answer)).status_code == 202
    await desk.reply_recorded(ticket["number"], reply)


async def test_call_events_open_a_ticket_for_the_caller_and_the_end_of_the_call_is_recorded_on_it(desk: Desk) -> None:
    call_id = f"call-{uuid.uuid4().hex}"

    async def event(**body: object) -> httpx.Response:
        return await desk.intake.post("/v1/channels/phone/events", json={"call_id": call_id, **body})

    assert (await event(event="call.started", caller="0117 496 0123")).status_code == 202
    assert (await event(event="call.answered", agent_id="agent-7")).status_code == 202
    ticket = await desk.ticket_for("phone", call_id)
    assert opened_for(ticket, "u-1005")["phone"] == "+441174960123"

    ended = await event(event="call.ended", duration_s=312, summary="Reset the Teams client")
    assert ended.status_code == 202 and ended.json()["reply_to_number"] == ticket["number"]
    await desk.reply_recorded(ticket["number"], f"{call_id}/ended")


async def test_an_incident_published_onto_the_topic_opens_a_ticket_and_a_reply_published_so_is_recorded_on_it(
    desk: Desk,
) -> None:
    topic = desk.prefix + INCIDENTS_REPORTED.name
    opening = incident("Salesforce sync stuck", email="k.johnson@example.com")
    await produce(desk.bootstrap, topic, opening.model_dump_json().encode(), opening.data.partition_key.encode())
    ticket = await desk.ticket_for("integration", opening.data.channel_message_id)
    assert opened_for(ticket, "u-1004")["department"] == "Operations"

    reply = incident("Still stuck", email="k.johnson@example.com")
    reply = reply.model_copy(update={"data": reply.data.model_copy(update={"reply_to_number": ticket["number"]})})
    await produce(desk.bootstrap, topic, reply.model_dump_json().encode(), reply.data.partition_key.encode())
    await desk.reply_recorded(ticket["number"], reply.data.channel_message_id)


async def test_an_unidentified_messenger_senders_next_message_is_recorded_on_their_ticket(desk: Desk) -> None:
    sender = str(uuid.uuid4().int)[:16]  # a page-scoped id the directory does not know

    def message(mid: str, text: str) -> dict[str, Any]:
        event = {"sender": {"id": sender}, "recipient": {"id": "PAGE"}, "timestamp": 1,
                 "message": {"mid": mid, "text": text}}  # fmt: skip
        return {"object": "page", "entry": [{"id": "PAGE", "time": 1, "messaging": [event]}]}

    opening = f"m_{uuid.uuid4().hex}"
    assert (await desk.meta(message(opening, "My order never arrived"))).status_code == 200
    ticket = await desk.ticket_for("social", opening)
    assert ticket["customer"]["identified"] is False and ticket["customer"]["social_handle"] == f"facebook:{sender}"
    await desk.intake_knows_the_ticket(ticket["number"])

    follow_up = f"m_{uuid.uuid4().hex}"  # no ticket number in it: the conversation is the sender's
    assert (await desk.meta(message(follow_up, "It was order 7781"))).status_code == 200
    recorded = await desk.reply_recorded(ticket["number"], follow_up)
    assert recorded["data"]["text"] == "It was order 7781"
    naming = f"m_{uuid.uuid4().hex}"  # naming it works as well now that the handle makes them the same customer
    assert (await desk.meta(message(naming, f"Any news on {ticket['number']}?"))).status_code == 200
    await desk.reply_recorded(ticket["number"], naming)
