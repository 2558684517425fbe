"""The social channel over real HTTP: Meta's signed webhook and the generic JSON, through to identified incidents."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiokafka import ConsumerRecord

from contracts.incidents import IncidentIdentified
from contracts.topics import INCIDENTS_IDENTIFIED
from runtime.settings import CommonSettings
from runtime.topics_admin import ensure_topics
from services.intake.bootstrap import build
from services.intake.config import Settings
from tests.support.kafka import read_all, wait_for

ROOT = Path(__file__).resolve().parents[2]
SECRET = "meta-app-secret"
KEY = "bridge-key-123"


class Social:
    def __init__(self, bootstrap: str, prefix: str, client: httpx.AsyncClient) -> None:
        self.bootstrap = bootstrap
        self.client = client
        self.identified = prefix + INCIDENTS_IDENTIFIED.name

    async def post_meta(self, body: bytes, signature: str | None = None) -> httpx.Response:
        signature = (
            signature
            if signature is not None
            else "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        )
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
        return await self.client.post("/v1/channels/social/meta", content=body, headers=headers)

    async def identified_for(self, channel_message_id: str) -> IncidentIdentified:
        async def ours() -> list[ConsumerRecord]:
            records = await read_all(self.bootstrap, self.identified, timeout=5)
            return [r for r in records if json.loads(r.value)["data"]["channel_message_id"] == channel_message_id]

        [record] = await wait_for(ours, timeout=30)
        return IncidentIdentified.model_validate_json(record.value)

    async def all_identified_for(self, channel_message_id: str, at_least: int) -> list[IncidentIdentified]:
        async def enough() -> list[IncidentIdentified] | None:
            records = await read_all(self.bootstrap, self.identified, timeout=5)
            found = [IncidentIdentified.model_validate_json(r.value) for r in records]
            ours = [m for m in found if m.data.channel_message_id == channel_message_id]
            return ours if len(ours) >= at_least else None

        return await wait_for(enough, timeout=30)


@pytest.fixture(scope="module")
async def social(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Social]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix, partitions=3)
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=prefix, kafka_retry_backoff_ms=10
    )
    settings = Settings(
        directory_file=ROOT / "services/intake/directory.example.yaml",
        database_url=f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('intake') / 'intake.db'}",
        smtp_enabled=False,
        meta_app_secret=SECRET,
        meta_verify_token="verify-me",
        api_keys=f"bridge:report+write-directory={KEY}",
    )
    service = build(common, settings)
    async with service._lifespan(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield Social(kafka_bootstrap, prefix, client)


async def test_a_signed_messenger_message_comes_out_identified_by_the_customers_page_scoped_id(social: Social) -> None:
    customer = {"name": "Page Customer", "social_handles": ["facebook:7001"], "department": "Retail"}
    put = await social.client.put("/v1/customers/fb-1", json=customer, headers={"X-API-Key": KEY})
    assert put.status_code == 201, put.text
    mid = f"m_{uuid.uuid4().hex}"
    body = json.dumps({"object": "page", "entry": [{"id": "P", "time": 1, "messaging": [
        {"sender": {"id": "7001"}, "recipient": {"id": "P"}, "timestamp": 1, "message": {"mid": mid, "text": "Card reader offline"}}]}]}).encode()  # fmt: skip
    response = await social.post_meta(body)
    assert (response.status_code, response.text) == (200, "EVENT_RECEIVED")
    identified = await social.identified_for(mid)
    assert (identified.data.customer.customer_id, identified.data.customer.department) == ("fb-1", "Retail")


async def test_a_meta_delivery_with_a_bad_signature_is_refused_with_403(social: Social) -> None:
    response = await social.post_meta(b'{"object": "page", "entry": []}', signature="sha256=" + "0" * 64)
    assert response.status_code == 403 and "X-Hub-Signature-256" in response.json()["detail"]


async def test_the_meta_subscription_check_echoes_the_challenge_only_for_the_right_token(social: Social) -> None:
    ok = await social.client.get(
        "/v1/channels/social/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"},
    )
    assert (ok.status_code, ok.text) == (200, "1158201444")
    bad = await social.client.get(
        "/v1/channels/social/meta", params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}
    )
    assert bad.status_code == 403


async def test_a_generic_mention_needs_an_api_key_and_comes_out_identified_by_handle(social: Social) -> None:
    message_id = uuid.uuid4().hex
    body = {
        "platform": "x",
        "kind": "mention",
        "message_id": message_id,
        "author": {"handle": "@Amazing_Grace"},
        "text": "@helpdesk VPN is down again",
    }
    assert (await social.client.post("/v1/channels/social", json=body)).status_code == 401
    response = await social.client.post("/v1/channels/social", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 202
    identified = await social.identified_for(f"x:{message_id}")
    assert (identified.data.customer.customer_id, identified.data.channel.value) == ("u-1002", "social")


async def test_the_incidents_endpoint_needs_the_api_key_when_keys_are_set(social: Social) -> None:
    body = {"contact": {"email": "tbl@example.com"}, "subject": "x"}
    assert (await social.client.post("/v1/incidents", json=body)).status_code == 401
    assert (await social.client.post("/v1/incidents", json=body, headers={"X-API-Key": KEY})).status_code == 202


def changes(obj: str, field: str, value: dict[str, object], account: str = "17841400000000001") -> bytes:
    """A Meta delivery of one change (a mention, a Page post or comment)."""
    change = {"field": field, "value": value}
    return json.dumps({"object": obj, "entry": [{"id": account, "time": 1773480000, "changes": [change]}]}).encode()


async def test_a_signed_instagram_mention_with_only_ids_opens_one_incident_however_often_meta_sends_it(
    social: Social,
) -> None:
    comment_id = str(uuid.uuid4().int)[:17]
    body = changes("instagram", "mentions", {"media_id": "17918195224117851", "comment_id": comment_id})
    for _ in range(2):  # Meta retries a delivery it did not see answered
        response = await social.post_meta(body)
        assert (response.status_code, response.text) == (200, "EVENT_RECEIVED")
    records = await social.all_identified_for(f"instagram:comment:{comment_id}", at_least=2)
    assert len({r.event_id for r in records}) == 1  # the same incident: one ticket downstream
    incident = records[0].data
    assert not incident.customer.identified
    assert "17918195224117851" in incident.description and comment_id in incident.description


async def test_a_signed_page_comment_comes_out_identified_by_its_authors_id(social: Social) -> None:
    author = str(uuid.uuid4().int)[:15]
    customer = {"name": "Commenting Customer", "social_handles": [f"facebook:{author}"], "location": "Leeds"}
    put = await social.client.put(f"/v1/customers/fbc-{author}", json=customer, headers={"X-API-Key": KEY})
    assert put.status_code == 201, put.text
    comment_id = f"200_{uuid.uuid4().int % 10**12}"
    value = {"item": "comment", "verb": "add", "post_id": "100_200", "comment_id": comment_id,
             "message": "Checkout keeps failing", "from": {"id": author, "name": "Commenting Customer"}}  # fmt: skip
    response = await social.post_meta(changes("page", "feed", value, account="100"))
    assert response.status_code == 200
    identified = await social.identified_for(f"facebook:comment:{comment_id}")
    assert (identified.data.customer.customer_id, identified.data.customer.location) == (f"fbc-{author}", "Leeds")
    assert identified.data.subject == "Checkout keeps failing"


async def test_a_mention_with_a_bad_signature_is_refused_and_not_reported(social: Social) -> None:
    comment_id = str(uuid.uuid4().int)[:17]
    forged = changes("instagram", "mentions", {"media_id": "1", "comment_id": comment_id, "text": "forged"})
    genuine = changes("instagram", "mentions", {"media_id": "1", "comment_id": comment_id, "text": "genuine"})
    response = await social.post_meta(
        forged, "sha256=" + hmac.new(b"not-the-secret", forged, hashlib.sha256).hexdigest()
    )
    assert response.status_code == 403 and "X-Hub-Signature-256" in response.json()["detail"]
    assert (await social.post_meta(genuine)).status_code == 200
    # Both would share a key, so a forged report would sit before the genuine one on the same partition.
    records = await social.all_identified_for(f"instagram:comment:{comment_id}", at_least=1)
    assert [r.data.subject for r in records] == ["genuine"]
