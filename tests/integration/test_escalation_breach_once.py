"""One breach, one level: the timer records a breach before it sends it, so neither the consumer overtaking it
(``ticket.escalated`` applied before the timer stored its pass) nor a crash between sending and storing makes the
same breach escalate the ticket a second level. Real broker, both databases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from contracts.commands import EscalateTicket
from contracts.envelope import new_envelope
from contracts.tickets import TicketRouted, TicketRoutedData
from contracts.topics import ESCALATION_COMMANDS
from runtime.consumer import Delivery
from runtime.kafka import Outgoing, Publisher, make_broker
from runtime.settings import CommonSettings
from services.escalation.adapters.store import DeadlineStore
from services.escalation.calendar import TWENTY_FOUR_SEVEN
from services.escalation.domain.message_ids import escalate_command_id
from services.escalation.domain.policy import EscalationPolicy, Level
from services.escalation.handlers import TicketEventHandler
from services.escalation.sla import PolicyMatch, SlaPolicies, SlaPolicy, SlaTargets
from services.escalation.timer import EscalationTimer
from tests.integration.test_escalation_service import TopicReader
from tests.unit.test_escalation_targets import LEVELS, TICKET, escalated, minutes, note, opened

# Ten minutes to the first response, then a public update at least every 30 minutes; four levels.
TARGETS = SlaTargets(timedelta(minutes=10), timedelta(minutes=30), None)
POLICY = EscalationPolicy(
    (*LEVELS, Level(4, "L4", "L4-duty", "l4@helpdesk.example")),
    sla=SlaPolicies((SlaPolicy("all", PolicyMatch(), TWENTY_FOUR_SEVEN, TARGETS, ()),)),
)
MISSED_UPDATE = minutes(35)  # answered in public at minute 4 (still unclaimed), no update by minute 34


class Clock:
    def now(self) -> Any:
        return MISSED_UPDATE


class Crash(Exception):
    """The process dies right after Kafka acknowledged the pass's messages."""


class Publishing:
    """The real publisher, and then something else happens before the timer goes on."""

    def __init__(self, publisher: Publisher, then: Callable[[], Awaitable[None]]) -> None:
        self._publisher, self._then, self._done = publisher, then, False

    async def publish_all(self, items: Sequence[Outgoing]) -> None:
        await self._publisher.publish_all(items)
        if not self._done and any(isinstance(item.message, EscalateTicket) for item in items):
            self._done = True
            await self._then()


class Overtaken:
    """The real store; the consumer writes the ticket's row just before the timer stores its pass."""

    def __init__(self, store: DeadlineStore, then: Callable[[], Awaitable[None]]) -> None:
        self._store, self._then, self._done = store, then, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def settle(self, *args: Any, **kwargs: Any) -> Any:
        if not self._done:
            self._done = True
            await self._then()
        return await self._store.settle(*args, **kwargs)


@pytest.fixture
async def publisher(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Publisher]:
    common = CommonSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix)
    broker = make_broker("escalation-test", common)
    await broker.connect()
    try:
        yield Publisher(broker, "escalation", topic_prefix)
    finally:
        await broker.stop()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[DeadlineStore]:
    deadline_store = DeadlineStore(database_url)
    await deadline_store.create_schema()
    yield deadline_store
    await deadline_store.close()


def deliveries(*events: Any) -> list[Delivery[Any]]:
    return [Delivery(e, "helpdesk.tickets.events.v1", 0, n, None) for n, e in enumerate(events)]


def timer(store: DeadlineStore, publisher: Any) -> EscalationTimer:
    return EscalationTimer(store, publisher, POLICY, Clock(), interval_s=0.05, batch=100)


async def escalations_sent(kafka_bootstrap: str, topic_prefix: str) -> list[tuple[Any, int]]:
    async with TopicReader(kafka_bootstrap, ESCALATION_COMMANDS.qualified(topic_prefix)) as commands:
        await commands.wait_for(lambda m: isinstance(m, EscalateTicket))
        sent = await commands.read_for(0.5)
    return [(m.event_id, m.data.level) for m in sent if isinstance(m, EscalateTicket)]


async def test_a_ticket_escalated_recorded_before_the_timer_stores_its_pass_does_not_send_the_breach_a_level_higher(
    kafka_bootstrap: str, topic_prefix: str, store: DeadlineStore, publisher: Publisher
) -> None:
    consumer = TicketEventHandler(store, POLICY, Clock())
    await consumer(deliveries(opened(), note(minutes(4))))

    async def ticket_service_applies_it() -> None:  # and the consumer records it, before the timer goes on
        await consumer(deliveries(escalated(2, MISSED_UPDATE)))

    assert await timer(store, Publishing(publisher, ticket_service_applies_it)).fire_due() == 1
    await timer(store, publisher).fire_due()  # the next pass: the breach was handled, nothing more is due
    await timer(store, publisher).fire_due()

    assert await escalations_sent(kafka_bootstrap, topic_prefix) == [(escalate_command_id(TICKET, 2), 2)]
    clock = await store.clock_of(TICKET)
    assert clock is not None and (clock.level, clock.update_breached, clock.escalated_to) == (2, True, 2)


async def test_a_crash_between_sending_and_storing_sends_the_same_escalation_again_and_never_the_next_level(
    kafka_bootstrap: str, topic_prefix: str, store: DeadlineStore, publisher: Publisher
) -> None:
    consumer = TicketEventHandler(store, POLICY, Clock())
    await consumer(deliveries(opened(), note(minutes(4))))

    async def crash() -> None:
        raise Crash

    with pytest.raises(Crash):
        await timer(store, Publishing(publisher, crash)).fire_due()
    await consumer(deliveries(escalated(2, MISSED_UPDATE)))  # the ticket service applied it meanwhile
    restarted = timer(store, publisher)
    await restarted.fire_due()
    await restarted.fire_due()

    sent = await escalations_sent(kafka_bootstrap, topic_prefix)
    assert {level for _, level in sent} == {2} and {i for i, _ in sent} == {escalate_command_id(TICKET, 2)}
    assert await store.unsent() == []  # the outbox is empty once Kafka has it all


def escalations_counted() -> float:
    return REGISTRY.get_sample_value("helpdesk_escalation_fired_total", {"level": "2"}) or 0.0


async def test_a_pass_the_consumer_overtook_sends_and_counts_nothing_and_the_next_pass_sends_the_breach_once(
    kafka_bootstrap: str, topic_prefix: str, store: DeadlineStore, publisher: Publisher
) -> None:
    consumer = TicketEventHandler(store, POLICY, Clock())
    await consumer(deliveries(opened(), note(minutes(4))))
    routed = TicketRoutedData(number="HD-42", version=3, queue="network", rule="r", reason="x")

    async def routing_moves_it() -> None:  # the row changes under the timer; its breach is still due
        await consumer(deliveries(new_envelope(TicketRouted, routed, ticket_id=TICKET, occurred_at=MISSED_UPDATE)))

    counted = escalations_counted()
    await timer(Overtaken(store, routing_moves_it), publisher).fire_due()
    assert escalations_counted() == counted  # nothing stored, so nothing sent and nothing counted
    assert await timer(store, publisher).fire_due() == 1
    assert escalations_counted() == counted + 1
    assert await escalations_sent(kafka_bootstrap, topic_prefix) == [(escalate_command_id(TICKET, 2), 2)]
