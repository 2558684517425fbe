"""A level sees every ticket escalated to it, owned or not; a team lead gives a ticket to a named agent."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.commands import EscalateTicket, EscalateTicketData
from contracts.envelope import new_envelope
from runtime.consumer import Delivery
from services.tickets.handlers import apply_commands
from tests.integration.test_tickets_api import Desk, desk, problem  # noqa: F401 - the fixture

L2 = "L2-network"


async def escalate(desk: Desk, number: str, target: str) -> None:
    """Escalation's command for a breach of ``target`` (a late resolution escalates an owned ticket too)."""
    ticket_id = (await desk.http.get(f"/v1/tickets/{number}", headers=desk.auth())).json()["ticket_id"]
    data = EscalateTicketData(
        level=2, queue=L2, reason=f"{target} deadline passed", deadline=datetime.now(UTC), targets=[target]
    )
    command = new_envelope(EscalateTicket, data, ticket_id=ticket_id, correlation_id="c")
    await apply_commands(desk.db, lambda: None)([Delivery(command, "t", 0, 0, None)])


async def line_of(desk: Desk, queue: str) -> list[tuple[str, str, str | None]]:
    answer = await desk.http.get(f"/v1/queues/{queue}/tickets", headers=desk.auth("net-1"))
    assert answer.status_code == 200, answer.text
    return [(t["number"], t["status"], t["assignee"]) for t in answer.json()["tickets"]]


async def test_the_next_level_sees_every_ticket_escalated_to_it_and_takes_only_unclaimed_ones(desk: Desk) -> None:
    worked_on = await desk.ticket("a", priority=1, queue="L1-service-desk")
    await desk.http.post(f"/v1/tickets/{worked_on}/claim", headers=desk.auth("alice"))
    await escalate(desk, worked_on, "resolution")  # late although claimed: escalated, still alice's
    unclaimed = await desk.ticket("b", priority=2, queue="L1-service-desk")
    await escalate(desk, unclaimed, "first_response")
    first_line = await desk.ticket("c", priority=1, queue=L2)  # routed there at level 1, and claimed
    await desk.http.post(f"/v1/tickets/{first_line}/claim", headers=desk.auth("bob"))

    assert await line_of(desk, L2) == [(worked_on, "in_progress", "alice"), (unclaimed, "open", None)]
    taken = await desk.http.post(f"/v1/queues/{L2}/take-next", headers=desk.auth("net-1"))
    assert taken.json()["number"] == unclaimed, "take-next passes over the ticket alice owns"
    assert await line_of(desk, L2) == [(worked_on, "in_progress", "alice"), (unclaimed, "in_progress", "net-1")]
    nobody = await desk.http.post(f"/v1/queues/{L2}/take-next", headers=desk.auth("net-2"))
    assert nobody.status_code == 204
    depth = {q["queue"]: q["depth"] for q in (await desk.http.get("/v1/queues", headers=desk.auth())).json()["queues"]}
    assert depth[L2] == 0, "the depth counts only tickets waiting for someone to take them"

    await desk.http.post(f"/v1/tickets/{worked_on}/resolve", json={"resolution": "Reset"}, headers=desk.auth("alice"))
    assert await line_of(desk, L2) == [(unclaimed, "in_progress", "net-1")], "a resolved ticket leaves the line"


async def test_a_lead_gives_a_ticket_to_a_named_agent_taking_it_from_its_owner_and_the_wait_stays(
    desk: Desk,
) -> None:
    number = await desk.ticket("d")
    alice, lena = desk.auth("alice"), desk.auth("lena", ("lead",))
    await desk.http.post(f"/v1/tickets/{number}/claim", headers=alice)
    await desk.http.post(f"/v1/tickets/{number}/status", json={"status": "waiting_on_customer"}, headers=alice)

    given = await desk.http.post(
        f"/v1/tickets/{number}/assignment", json={"agent_id": "bob", "reason": "alice is on leave"}, headers=lena
    )
    assert given.status_code == 200, given.text
    ticket = given.json()
    assert (ticket["assignee"], ticket["status"]) == ("bob", "waiting_on_customer")
    assigned = ticket["history"][-1]
    assert assigned["type"] == "ticket.assigned"
    assert assigned["data"] | {"version": 0} == {
        "number": number, "version": 0, "agent_id": "bob", "strategy": "direct",
        "reason": "alice is on leave", "assigned_by": "lena",
    }  # fmt: skip
    again = await desk.http.post(f"/v1/tickets/{number}/assignment", json={"agent_id": "bob"}, headers=lena)
    assert again.json()["version"] == ticket["version"], "giving it to its owner again changes nothing"
    by_bob = await desk.http.post(f"/v1/tickets/{number}/release", headers=desk.auth("bob"))
    assert by_bob.status_code == 200, "bob owns it now"


async def test_an_unowned_ticket_given_to_an_agent_is_in_progress_with_the_reason_saying_who(desk: Desk) -> None:
    number = await desk.ticket("e")
    given = await desk.http.post(
        f"/v1/tickets/{number}/assignment", json={"agent_id": "net-2"}, headers=desk.auth("lena", ("lead",))
    )
    ticket = given.json()
    assert (ticket["assignee"], ticket["status"]) == ("net-2", "in_progress")
    assert ticket["history"][-1]["data"]["reason"] == "assigned by lena"


async def test_assigning_is_for_leads_names_a_well_formed_agent_and_an_unfinished_ticket(desk: Desk) -> None:
    number = await desk.ticket("f")
    lena = desk.auth("lena", ("lead",))
    for who in (desk.auth("alice"), desk.integration(), desk.customer()):
        refused = await desk.http.post(f"/v1/tickets/{number}/assignment", json={"agent_id": "alice"}, headers=who)
        problem(refused, 403, "forbidden")
    for malformed in ("", "bob smith", "-bob", "bob\r\nX-Injected: 1", "x" * 201):
        answer = await desk.http.post(f"/v1/tickets/{number}/assignment", json={"agent_id": malformed}, headers=lena)
        assert [e["where"] for e in problem(answer, 422, "invalid-request")["errors"]] == ["body.agent_id"]
    await desk.http.post(f"/v1/tickets/{number}/assignment", json={"agent_id": "alice"}, headers=lena)
    await desk.http.post(f"/v1/tickets/{number}/resolve", json={"resolution": "Done"}, headers=desk.auth("alice"))
    finished = await desk.http.post(f"/v1/tickets/{number}/assignment", json={"agent_id": "bob"}, headers=lena)
    assert problem(finished, 409, "ticket-rule")["rule"] == "ticket_resolved"
    unknown = await desk.http.post("/v1/tickets/HD-999999/assignment", json={"agent_id": "bob"}, headers=lena)
    problem(unknown, 404, "ticket-not-found")
