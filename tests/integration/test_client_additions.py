"""The client on the API's newer parts: merging, links, customers' tokens and integrations' API keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from helpdesk_client import (
    Forbidden,
    HelpdeskClient,
    NotFound,
    RuleViolation,
    Unauthorized,
)

from tests.support.ticket_service_http import (
    API_KEY,
    TicketService,
)


@pytest.fixture
def desk(ticket_service: TicketService) -> Iterator[HelpdeskClient]:
    with HelpdeskClient(ticket_service.url, token=ticket_service.token("alice")) as client:
        yield client


def a_queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


def test_merging_a_duplicate_ends_it_and_tells_the_ticket_it_went_into(
    ticket_service: TicketService,
    desk: HelpdeskClient,
) -> None:
    duplicate, original, third = ticket_service.open_tickets(3, queue=a_queue())
    merged = desk.merge(duplicate, original, "same outage", expected_version=3)
    assert (merged.number, merged.status) == (duplicate, "merged")
    assert merged.merged_into is not None and merged.merged_into.number == original
    assert merged.history[-1].type == "ticket.merged"
    received = desk.get_ticket(original).history[-1]
    assert (received.type, received.data["from_number"]) == (
        "ticket.merge_received",
        duplicate,
    )
    assert desk.merge(duplicate, original, "again").version == merged.version  # repeating it changes nothing
    with pytest.raises(RuleViolation) as twice:
        desk.merge(duplicate, third, "elsewhere")
    assert twice.value.rule == "ticket_already_merged"
    with pytest.raises(RuleViolation) as itself:
        desk.merge(original, original, "into itself")
    assert itself.value.rule == "cannot_merge_into_itself"


def test_links_are_recorded_on_both_tickets_once_and_removed_from_both(
    ticket_service: TicketService,
    desk: HelpdeskClient,
) -> None:
    parent, child = ticket_service.open_tickets(2, queue=a_queue())
    linked = desk.link(parent, child, "parent_of")
    assert [(link.kind, link.number) for link in linked.links] == [("parent_of", child)]
    assert [(link.kind, link.number) for link in desk.get_ticket(child).links] == [("child_of", parent)]
    assert desk.link(parent, child, "parent_of").version == linked.version  # the same link again changes nothing
    unlinked = desk.unlink(parent, child, "parent_of")
    assert unlinked.links == [] and desk.get_ticket(child).links == []
    assert unlinked.history[-1].type == "ticket.unlinked"


def test_a_customer_sees_only_their_own_tickets_and_may_only_reply(
    ticket_service: TicketService,
    desk: HelpdeskClient,
) -> None:
    customer_id = f"c-{uuid.uuid4().hex[:6]}"
    own = ticket_service.open_ticket(queue=a_queue(), customer_id=customer_id)
    others = ticket_service.open_ticket(queue=a_queue(), customer_id="someone-else")
    desk.add_note(own, "internal musings")
    token = ticket_service.token(customer_id, ("customer",))
    with HelpdeskClient(ticket_service.url, token=token) as customer:
        assert [t.number for t in customer.list_tickets()] == [own]
        with pytest.raises(NotFound):
            customer.get_ticket(others)
        replied = customer.add_note(own, "It is still broken", public=True)
        assert replied.history[-1].type == "ticket.customer_replied"
        assert all(e.data.get("text") != "internal musings" for e in replied.history)
        with pytest.raises(Forbidden):
            customer.claim(own)


def test_an_integration_acts_with_its_api_key_but_may_not_take_tickets(
    ticket_service: TicketService,
) -> None:
    queue = a_queue()
    number = ticket_service.open_ticket(queue=queue)
    with HelpdeskClient(ticket_service.url, api_key=API_KEY) as crm:
        assert number in [t.number for t in crm.list_tickets(queue=queue)]
        noted = crm.add_note(number, "Customer called the CRM line")
        assert noted.history[-1].data["author"] == "integration:crm"
        with pytest.raises(Forbidden):
            crm.take_next(queue)
    with (
        HelpdeskClient(ticket_service.url, api_key="wrong-key") as stranger,
        pytest.raises(Unauthorized),
    ):
        stranger.queues()
