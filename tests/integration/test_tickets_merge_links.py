"""Merging and linking tickets through the HTTP API, on SQLite and PostgreSQL, relayed to the real broker."""

from __future__ import annotations

import asyncio
import uuid

from services.tickets.adapters import event_store
from tests.integration.test_tickets_api import Desk, _read_events, desk, problem

__all__ = ["desk"]  # the fixture, shared with the API's tests


async def test_a_merged_ticket_is_terminal_and_both_tickets_record_the_merge(desk: Desk) -> None:
    duplicate, original = await desk.ticket("dup"), await desk.ticket("orig")
    alice = desk.auth("alice")
    await desk.http.post(f"/v1/tickets/{duplicate}/claim", headers=alice)
    merged = await desk.http.post(
        f"/v1/tickets/{duplicate}/merge",
        json={"into": original, "reason": "same VPN outage"},
        headers={**alice, "If-Match": '"4"'},
    )
    assert merged.status_code == 200, merged.text
    source = merged.json()
    target = (await desk.http.get(f"/v1/tickets/{original}", headers=alice)).json()
    assert (source["number"], source["status"], source["version"], merged.headers["etag"]) == (
        duplicate,
        "merged",
        5,
        '"5"',
    )
    assert source["merged_into"] == {"ticket_id": target["ticket_id"], "number": original}
    assert source["history"][-1]["data"]["merged_by"] == "alice"
    assert (target["status"], target["merged_into"], target["version"]) == ("open", None, 4)
    received = target["history"][-1]
    assert (received["type"], received["data"]["from_number"], received["data"]["reason"]) == (
        "ticket.merge_received",
        duplicate,
        "same VPN outage",
    )

    again = await desk.http.post(
        f"/v1/tickets/{duplicate}/merge", json={"into": original, "reason": "again"}, headers=alice
    )
    assert again.status_code == 200 and again.json()["version"] == 5  # the same merge again changes nothing
    late_claim = await desk.http.post(f"/v1/tickets/{duplicate}/release", headers=alice)
    assert problem(late_claim, 409, "ticket-rule")["rule"] == "ticket_merged"
    listed = await desk.http.get("/v1/tickets", params={"status": "merged"}, headers=alice)
    assert [t["number"] for t in listed.json()["tickets"]] == [duplicate]

    events = await _read_events(desk.common, until_type="ticket.merge_received")
    relayed = {(m.type, m.data.number) for m in events}
    assert {("ticket.merged", duplicate), ("ticket.merge_received", original)} <= relayed


async def test_merge_rules_answer_409_naming_the_rule_and_change_nothing(desk: Desk) -> None:
    first, second, third = await desk.ticket("a"), await desk.ticket("b"), await desk.ticket("c")
    alice, bob = desk.auth("alice"), desk.auth("bob")

    async def merge(ref: str, into: str, headers: dict[str, str] = alice, reason: str = "dup") -> str | int:
        """The rule that refused the merge, or the status code when no rule did."""
        response = await desk.http.post(
            f"/v1/tickets/{ref}/merge", json={"into": into, "reason": reason}, headers=headers
        )
        return response.json().get("rule", response.status_code)

    first_id = (await desk.http.get(f"/v1/tickets/{first}", headers=alice)).json()["ticket_id"]
    assert await merge(first, first_id) == "cannot_merge_into_itself"
    assert await merge(first, second, reason=" ") == "reason_required"
    missing = await desk.http.post(
        f"/v1/tickets/{first}/merge", json={"into": "HD-999999", "reason": "x"}, headers=alice
    )
    problem(missing, 404, "ticket-not-found")
    await desk.http.post(f"/v1/tickets/{third}/claim", headers=alice)
    assert await merge(third, second, headers=bob) == "only_owner_or_lead"
    stale = await desk.http.post(
        f"/v1/tickets/{first}/merge", json={"into": second, "reason": "x"}, headers={**alice, "If-Match": '"2"'}
    )
    assert problem(stale, 409, "stale-version")["current_version"] == 3

    assert await merge(second, third, headers=bob) == 200  # second is unowned: any agent merges it
    assert await merge(first, second) == "cannot_merge_into_merged_ticket"
    assert await merge(second, first) == "ticket_already_merged"
    untouched = (await desk.http.get(f"/v1/tickets/{first}", headers=alice)).json()
    assert (untouched["status"], untouched["version"]) == ("open", 3)


async def test_many_tickets_merged_into_one_at_once_are_all_recorded_on_it(desk: Desk) -> None:
    target = await desk.ticket("master")
    sources = [await desk.ticket(f"dup-{n}") for n in range(6)]
    responses = await asyncio.gather(
        *(
            desk.http.post(
                f"/v1/tickets/{s}/merge", json={"into": target, "reason": "outage"}, headers=desk.auth(f"a{n}")
            )
            for n, s in enumerate(sources)
        )
    )
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    master = (await desk.http.get(f"/v1/tickets/{target}", headers=desk.auth())).json()
    received = sorted(e["data"]["from_number"] for e in master["history"] if e["type"] == "ticket.merge_received")
    assert received == sorted(sources) and master["version"] == 3 + 6


async def test_a_link_is_recorded_on_both_tickets_and_linking_twice_changes_nothing(desk: Desk) -> None:
    parent, child = await desk.ticket("parent"), await desk.ticket("child")
    auth = desk.auth("alice")
    linked = await desk.http.post(
        f"/v1/tickets/{parent}/links", json={"target": child, "kind": "parent_of"}, headers=auth
    )
    assert linked.status_code == 200, linked.text
    child_view = (await desk.http.get(f"/v1/tickets/{child}", headers=auth)).json()
    assert linked.json()["links"] == [{"kind": "parent_of", "ticket_id": child_view["ticket_id"], "number": child}]
    assert child_view["links"] == [{"kind": "child_of", "ticket_id": linked.json()["ticket_id"], "number": parent}]
    assert child_view["history"][-1]["data"]["linked_by"] == "alice"

    twice = await desk.http.post(
        f"/v1/tickets/{parent}/links", json={"target": child, "kind": "parent_of"}, headers=auth
    )
    assert (twice.status_code, twice.headers["etag"]) == (200, linked.headers["etag"])
    related = await desk.http.post(
        f"/v1/tickets/{child}/links", json={"target": parent, "kind": "relates_to"}, headers=auth
    )
    assert {link["kind"] for link in related.json()["links"]} == {"child_of", "relates_to"}

    unlinked = await desk.http.delete(f"/v1/tickets/{parent}/links/{child}", params={"kind": "parent_of"}, headers=auth)
    assert unlinked.status_code == 200 and [link["kind"] for link in unlinked.json()["links"]] == ["relates_to"]
    child_view = (await desk.http.get(f"/v1/tickets/{child}", headers=auth)).json()
    assert [link["kind"] for link in child_view["links"]] == ["relates_to"]
    assert child_view["history"][-1]["type"] == "ticket.unlinked"
    again = await desk.http.delete(f"/v1/tickets/{parent}/links/{child}", params={"kind": "parent_of"}, headers=auth)
    assert (again.status_code, again.headers["etag"]) == (200, unlinked.headers["etag"])


async def test_link_rules_and_bad_link_requests_are_refused_saying_why(desk: Desk) -> None:
    one, other = await desk.ticket("one"), await desk.ticket("other")
    auth = desk.auth()
    to_itself = await desk.http.post(f"/v1/tickets/{one}/links", json={"target": one, "kind": "causes"}, headers=auth)
    assert problem(to_itself, 409, "ticket-rule")["rule"] == "cannot_link_to_itself"
    odd_kind = await desk.http.post(
        f"/v1/tickets/{one}/links", json={"target": other, "kind": "cousin_of"}, headers=auth
    )
    assert problem(odd_kind, 422, "invalid-request")["errors"][0]["where"] == "body.kind"
    no_kind = await desk.http.delete(f"/v1/tickets/{one}/links/{other}", headers=auth)
    assert problem(no_kind, 422, "invalid-request")["errors"][0]["where"] == "query.kind"
    nowhere = await desk.http.post(
        f"/v1/tickets/{one}/links", json={"target": str(uuid.uuid4()), "kind": "causes"}, headers=auth
    )
    problem(nowhere, 404, "ticket-not-found")
    await desk.http.post(f"/v1/tickets/{other}/merge", json={"into": one, "reason": "dup"}, headers=auth)
    to_merged = await desk.http.post(f"/v1/tickets/{one}/links", json={"target": other, "kind": "causes"}, headers=auth)
    assert problem(to_merged, 409, "ticket-rule")["rule"] == "ticket_merged"
    async with desk.db.reader.connect() as conn:
        stored = await event_store.read_after(conn, 0, 1000)
    assert not [e for e in stored if e.message.type == "ticket.linked"]  # nothing was linked along the way
