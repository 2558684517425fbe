"""The demo: one incident followed through every step, on a running suite.

Used by ``scripts/run`` (see README), and its small client functions by the
end-to-end test and bench/e2e. Everything goes through public surfaces: the
intake's HTTP endpoint, the ticket query API, and the mailbox folder of a real
SMTP server.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from contracts.envelope import new_envelope
from contracts.incidents import IncidentReported, IncidentReportedData
from devtools.mailbox import body_text, read_mailbox
from devtools.processes import Suite

T = TypeVar("T")


def sample_incident(subject: str, *, message_id: str | None = None, **contact: str) -> IncidentReported:
    """An ``incident.reported`` as an integration would put it on the intake topic."""
    data = IncidentReportedData(
        channel="integration",
        channel_message_id=message_id or uuid.uuid4().hex,
        received_at=datetime.now(UTC),
        subject=subject,
        description=f"{subject}: reported by the monitoring integration",
        contact=contact or {},
    )
    return new_envelope(IncidentReported, data)  # type: ignore[return-value]


def agent_token(suite: Suite, agent: str, role: str = "agent") -> str:
    """Mint a token the way docs/tickets-api.md tells agents to, for the suite's secret."""
    out = subprocess.run(
        [sys.executable, "-m", "services.tickets.mint_token", "--agent", agent, "--role", role],
        env={**suite.env()}, capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 30.0, interval: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f}s")
        await asyncio.sleep(interval)


async def find_ticket(http: httpx.AsyncClient, ref: str) -> dict[str, Any] | None:
    response = await http.get(f"/v1/tickets/{ref}")
    return response.json() if response.status_code == 200 else None


async def ticket_for_message(http: httpx.AsyncClient, channel: str, message_id: str) -> dict[str, Any] | None:
    response = await http.get("/v1/tickets", params={"channel": channel, "channel_message_id": message_id})
    response.raise_for_status()
    tickets = response.json()["tickets"]
    return await find_ticket(http, tickets[0]["number"]) if tickets else None


def mails_about(suite: Suite, number: str) -> list[Any]:
    return [m for m in read_mailbox(suite.mailbox_dir) if f"[{number}]" in str(m["Subject"])]


def say(step: str, text: str = "") -> None:
    print(f"\n\033[1m==> {step}\033[0m" if sys.stdout.isatty() else f"\n==> {step}", flush=True)
    if text:
        print(text, flush=True)


async def run_demo(suite: Suite, *, escalate_after_s: float) -> None:
    token = agent_token(suite, "alice")
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=suite.url("intake"), timeout=10) as intake, httpx.AsyncClient(
        base_url=suite.url("tickets"), headers=auth, timeout=10
    ) as tickets:
        message_id = f"demo-{uuid.uuid4().hex[:8]}"
        incident = {
            "channel_message_id": message_id,
            "contact": {"email": "Ada.Lovelace@example.com"},
            "subject": "Payroll export fails with error 500",
            "description": "Since this morning the SAP payroll export stops with error 500. Payroll runs today.",
            "components": ["sap-payroll"],
            "impact": "high",
            "urgency": "medium",
        }
        say("1. A customer reports an incident on the web channel", f"POST {suite.url('intake')}/v1/incidents")
        accepted = (await intake.post("/v1/incidents", json=incident)).raise_for_status().json()
        print(accepted)

        say("2. Intake identifies the customer; the ticket service opens a ticket")
        ticket = await eventually(lambda: ticket_for_message(tickets, "web", message_id))
        customer = ticket["customer"]
        print(f"ticket {ticket['number']} for {customer.get('name')} ({customer.get('department')}, "
              f"{customer.get('location')}); VIP={customer.get('vip')}")
        print(f"hardware: {', '.join(customer.get('hardware', []))}; software: {', '.join(customer.get('software', []))}")

        say("3. Routing sets its priority and queue")
        ticket = await eventually(lambda: _routed(tickets, ticket["number"]))
        for entry in ticket["history"]:
            if entry["type"] in ("ticket.prioritised", "ticket.routed"):
                print(f"{entry['type']}: {entry['data']}")

        say("4. Agent alice claims it and resolves it (agent id from her token)")
        (await tickets.post(f"/v1/tickets/{ticket['number']}/claim")).raise_for_status()
        resolved = (
            await tickets.post(
                f"/v1/tickets/{ticket['number']}/resolve",
                json={"resolution": "Restarted the payroll export job and cleared the stuck batch; export runs again."},
            )
        ).raise_for_status().json()
        print(f"status {resolved['status']}, resolved by {resolved['resolved_by']}")

        say("5. Notify e-mails the customer through SMTP", f"mailbox: {suite.mailbox_dir}")
        mail = await eventually(lambda: _first_mail(suite, ticket["number"], "Resolved"))
        print(f"To: {mail['To']}\nSubject: {mail['Subject']}\n\n{body_text(mail).strip()}")

        say("6. The full history from the ticket's event log")
        final = await find_ticket(tickets, ticket["number"])
        for entry in final["history"] if final else []:
            print(f"v{entry['version']} {entry['occurred_at']} {entry['type']}")

        say(f"7. A second incident nobody claims escalates after {escalate_after_s:.0f}s")
        other_id = f"demo-{uuid.uuid4().hex[:8]}"
        await intake.post("/v1/incidents", json={
            "channel_message_id": other_id, "contact": {"phone": "0161 496 0742"},
            "subject": "Cannot open MATLAB licence server", "components": ["licensing"],
        })
        other = await eventually(lambda: ticket_for_message(tickets, "web", other_id))
        print(f"ticket {other['number']} opened for {other['customer'].get('name')}; waiting for its deadline...")
        escalated = await eventually(lambda: _escalated(tickets, other["number"]), timeout=escalate_after_s + 60)
        print(f"escalated to level {escalated['level']}, now in queue {escalated['queue']}")
        page = await eventually(lambda: _first_mail(suite, other["number"], "escalated"))
        print(f"e-mail to {page['To']}: {page['Subject']}")


async def _routed(http: httpx.AsyncClient, number: str) -> dict[str, Any] | None:
    ticket = await find_ticket(http, number)
    return ticket if ticket and ticket.get("queue") and ticket.get("priority") else None


async def _escalated(http: httpx.AsyncClient, number: str) -> dict[str, Any] | None:
    ticket = await find_ticket(http, number)
    return ticket if ticket and ticket.get("level", 1) > 1 else None


async def _first_mail(suite: Suite, number: str, word: str) -> Any:
    for mail in mails_about(suite, number):
        if word.lower() in str(mail["Subject"]).lower():
            return mail
    return None
