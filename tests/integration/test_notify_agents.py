"""Notify reaching agents, levels and integrations through real HTTP peers (a recording
server standing in for Twilio, PagerDuty, Alertmanager and an integration), on both
databases: each method's wire format, each sent once however often its cause is
redelivered, retries of a failing provider, and the rate limits.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from contracts.envelope import new_envelope
from contracts.tickets import (
    TicketAssigned,
    TicketAssignedData,
    TicketEscalated,
    TicketEscalatedData,
)
from runtime.consumer import Delivery
from services.notify.adapters.providers import HttpProviders, ProviderUnavailable
from services.notify.adapters.smtp import SmtpMailer
from services.notify.adapters.store import NotifyStore, sent_notifications
from services.notify.bootstrap import rate_limits
from services.notify.config import Settings
from services.notify.handlers import Outbox, TicketEventHandler
from services.notify.recipients import Recipients, load_recipients
from services.notify.rendering import Templates
from tests.support.provider_sink import ProviderSink
from tests.support.smtp_sink import SmtpSink

RECIPIENTS = """
levels:
  - level: 2
    name: L2
    notify:
      - {method: sms, to: '+441610000002'}
      - {method: phone, to: '+441610000002'}
      - {method: pager, to: R0UT1NGKEY2}
      - {method: alarm, to: l2-team}
agents:
  - id: alice
    notify:
      - {method: sms, to: '+441610000101'}
webhooks:
  - {name: crm, url: '%s/hooks/helpdesk', secret_env: CRM_SECRET, events: [ticket.escalated], allow_http: true}
"""
SECRET = "whsec-test"


@pytest.fixture
def provider() -> Iterator[ProviderSink]:
    with ProviderSink() as running:
        yield running


@pytest.fixture
def recipients(provider: ProviderSink, tmp_path: Path) -> Recipients:
    path = tmp_path / "recipients.yaml"
    path.write_text(RECIPIENTS % provider.url)
    return load_recipients(path, {"CRM_SECRET": SECRET})


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[NotifyStore]:
    notify_store = NotifyStore(database_url)
    await notify_store.create_schema()
    yield notify_store
    await notify_store.close()


def settings(provider: ProviderSink, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "twilio_base_url": provider.url, "twilio_account_sid": "AC123", "twilio_auth_token": "tok",
        "twilio_from": "+15005550006", "pagerduty_url": provider.url, "alertmanager_url": provider.url,
        "http_timeout_s": 2, "webhook_attempts": 2, "smtp_port": 1,
    }
    return Settings(**(values | overrides))


@pytest.fixture
async def handler(store: NotifyStore, provider: ProviderSink, recipients: Recipients) -> AsyncIterator[TicketEventHandler]:
    s = settings(provider)
    providers = HttpProviders(s, recipients)
    outbox = Outbox(store, SmtpMailer(s), Templates(), {m: providers for m in HttpProviders.METHODS}, rate_limits(s))
    yield TicketEventHandler(store, outbox, recipients=recipients)
    await providers.close()


def batch(*events: Any) -> list[Delivery[Any]]:
    return [Delivery(e, "helpdesk.tickets.events.v1", 0, n, None) for n, e in enumerate(events)]


def escalated(ticket: uuid.UUID | None = None) -> Any:
    data = TicketEscalatedData(number="HD-7", version=4, level=2, queue="L2-specialists", reason="unclaimed 15 min")
    return new_envelope(TicketEscalated, data, ticket_id=ticket or uuid.uuid4())


def by_path(requests: list[Any]) -> dict[str, Any]:
    return {r.path: r for r in requests}


async def test_an_escalation_reaches_the_level_by_sms_call_pager_alarm_and_webhook_in_each_providers_format(
    handler: TicketEventHandler, provider: ProviderSink
) -> None:
    event = escalated()
    await handler(batch(event))
    got = by_path(await provider.wait_for(5))

    sms = got["/2010-04-01/Accounts/AC123/Messages.json"]
    assert sms.form == {"To": "+441610000002", "From": "+15005550006",
                        "Body": "[HD-7] escalated to level 2 (L2-specialists): unclaimed 15 min"}
    assert sms.headers["authorization"].startswith("Basic ")
    call = got["/2010-04-01/Accounts/AC123/Calls.json"]
    assert call.form["To"] == "+441610000002" and call.form["Twiml"].startswith("<Response><Say")
    assert "[HD-7] escalated to level 2" in call.form["Twiml"]
    page = got["/v2/enqueue"].json
    assert page["routing_key"] == "R0UT1NGKEY2" and page["event_action"] == "trigger"
    assert page["dedup_key"] == f"HD-7.escalated.{event.event_id}.pager.R0UT1NGKEY2"
    [alert] = got["/api/v2/alerts"].json
    assert alert["labels"]["ticket"] == "HD-7" and alert["labels"]["receiver"] == "l2-team"
    hook = got["/hooks/helpdesk"]
    assert hook.json["event_id"] == str(event.event_id) and hook.json["type"] == "ticket.escalated"
    assert hook.headers["idempotency-key"] == f"webhook.crm.{event.event_id}"


async def test_a_redelivered_escalation_notifies_nobody_a_second_time(
    handler: TicketEventHandler, provider: ProviderSink
) -> None:
    event = escalated()
    await handler(batch(event))
    await provider.wait_for(5)
    await handler(batch(event, event))
    assert len(provider.requests) == 5


async def test_the_webhook_signature_verifies_with_the_integrations_secret(
    handler: TicketEventHandler, provider: ProviderSink
) -> None:
    await handler(batch(escalated()))
    hook = by_path(await provider.wait_for(5))["/hooks/helpdesk"]
    fields = dict(part.split("=", 1) for part in hook.headers["x-helpdesk-signature"].split(","))
    expected = hmac.new(SECRET.encode(), fields["t"].encode() + b"." + hook.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert hook.headers["x-helpdesk-event"] == "ticket.escalated"


async def test_an_assignment_texts_the_agent_it_was_given_to(handler: TicketEventHandler, provider: ProviderSink) -> None:
    data = TicketAssignedData(number="HD-8", version=3, agent_id="alice", strategy="round_robin", reason="next in line")
    await handler(batch(new_envelope(TicketAssigned, data, ticket_id=uuid.uuid4())))
    [sms] = await provider.wait_for(1)
    assert sms.form["To"] == "+441610000101" and sms.form["Body"] == "[HD-8] assigned to you: next in line"


async def test_a_provider_answering_500_is_retried_and_a_provider_that_stays_down_fails_the_batch_unrecorded(
    handler: TicketEventHandler, provider: ProviderSink, store: NotifyStore
) -> None:
    provider.fail(500, times=1)  # the first call fails, its retry succeeds
    event = escalated()
    await handler(batch(event))
    await provider.wait_for(5)
    assert [r.status for r in provider.requests].count(500) == 1

    provider.fail(503, times=100)
    with pytest.raises(ProviderUnavailable, match="HTTP 503"):
        await handler(batch(escalated()))
    async with store.reader.connect() as conn:
        recorded = (await conn.execute(select(sent_notifications.c.event_id))).scalars().all()
    assert set(recorded) == {event.event_id}  # the failed one is not recorded: a retry sends it


async def test_a_provider_that_times_out_is_retried_within_the_call(
    store: NotifyStore, provider: ProviderSink, recipients: Recipients
) -> None:
    s = settings(provider, http_timeout_s=0.3, webhook_attempts=3)
    providers = HttpProviders(s, recipients)
    outbox = Outbox(store, SmtpMailer(s), Templates(), {m: providers for m in HttpProviders.METHODS})
    provider.stall(2.0, times=1)
    data = TicketAssignedData(number="HD-9", version=3, agent_id="alice", strategy="direct", reason="r")
    try:
        await TicketEventHandler(store, outbox, recipients=recipients)(
            batch(new_envelope(TicketAssigned, data, ticket_id=uuid.uuid4())))
    finally:
        await providers.close()
    [sms] = await provider.wait_for(1)
    assert sms.form["To"] == "+441610000101"


def held_back(method: str, limit: str) -> float:
    return REGISTRY.get_sample_value("helpdesk_notify_held_back_total", {"method": method, "limit": limit}) or 0.0


async def test_a_runaway_loop_of_assignments_texts_the_agent_only_up_to_the_limit_and_records_the_rest(
    store: NotifyStore, provider: ProviderSink, recipients: Recipients
) -> None:
    s = settings(provider, rate_per_recipient_burst=3, rate_per_recipient_per_min=1)
    providers = HttpProviders(s, recipients)
    outbox = Outbox(store, SmtpMailer(s), Templates(), {m: providers for m in HttpProviders.METHODS}, rate_limits(s))
    before = held_back("sms", "recipient")
    events = [new_envelope(TicketAssigned, TicketAssignedData(
        number="HD-10", version=3 + n, agent_id="alice", strategy="round_robin", reason="loop"), ticket_id=uuid.uuid4())
        for n in range(40)]
    try:
        await TicketEventHandler(store, outbox, recipients=recipients)(batch(*events))
    finally:
        await providers.close()
    assert len(provider.requests) == 3
    assert held_back("sms", "recipient") == before + 37
    async with store.reader.connect() as conn:
        outcomes = (await conn.execute(select(sent_notifications.c.outcome))).scalars().all()
    assert sorted(outcomes).count("held_back") == 37 and outcomes.count("sent") == 3


async def test_no_level_routes_means_no_calls_and_no_sql(store: NotifyStore, provider: ProviderSink) -> None:
    s = settings(provider)
    with SmtpSink() as smtp:
        outbox = Outbox(store, SmtpMailer(s.model_copy(update={"smtp_port": smtp.port})), Templates())
        await TicketEventHandler(store, outbox)(batch(escalated()))
    assert provider.requests == []


async def test_a_provider_that_keeps_timing_out_fails_the_batch_with_the_timeout_and_records_nothing(
    store: NotifyStore, provider: ProviderSink, recipients: Recipients
) -> None:
    s = settings(provider, http_timeout_s=0.2, webhook_attempts=2)
    providers = HttpProviders(s, recipients)
    outbox = Outbox(store, SmtpMailer(s), Templates(), {m: providers for m in HttpProviders.METHODS})
    provider.stall(1.0, times=2)
    data = TicketAssignedData(number="HD-11", version=3, agent_id="alice", strategy="direct", reason="r")
    try:
        with pytest.raises(ProviderUnavailable, match="ReadTimeout"):
            await TicketEventHandler(store, outbox, recipients=recipients)(
                batch(new_envelope(TicketAssigned, data, ticket_id=uuid.uuid4())))
    finally:
        await providers.close()
    async with store.reader.connect() as conn:
        assert (await conn.execute(select(sent_notifications.c.notification_key))).all() == []
