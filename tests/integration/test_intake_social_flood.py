"""The flood guard on Meta's webhook, over the real broker: a flooded contact is answered 200 AND kept.

Meta never resends a delivery answered 200, so a contact over the limit goes
whole to the dead-letter topic (replayable); contacts without a sender (a
mention Meta sends with ids only) are not lumped into one bucket per post.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from contracts.incidents import IncidentReported
from contracts.topics import DEAD_LETTERS, INCIDENTS_IDENTIFIED, INCIDENTS_REPORTED
from runtime.settings import CommonSettings
from runtime.topics_admin import ensure_topics
from services.intake.bootstrap import build
from services.intake.config import Settings
from tests.support.kafka import produce, read_all, wait_for

ROOT = Path(__file__).resolve().parents[2]
SECRET = "meta-app-secret"
KEY = "bridge-key-123"
LIMIT = 2


class Meta:
    def __init__(self, bootstrap: str, prefix: str, client: httpx.AsyncClient) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.client = client

    async def deliver(self, document: dict[str, object]) -> httpx.Response:
        body = json.dumps(document).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
        return await self.client.post("/v1/channels/social/meta", content=body, headers=headers)

    async def identified(self, channel_message_ids: set[str]) -> set[str]:
        """The ids among ``channel_message_ids`` identified, once all of them are."""

        async def all_of_them() -> set[str] | None:
            records = await read_all(self.bootstrap, self.prefix + INCIDENTS_IDENTIFIED.name, timeout=5)
            found = {json.loads(r.value)["data"]["channel_message_id"] for r in records} & channel_message_ids
            return found if found == channel_message_ids else None

        return await wait_for(all_of_them, timeout=30)

    async def set_aside(self, at_least: int) -> list[tuple[dict[str, str], bytes, bytes]]:
        async def enough() -> list[tuple[dict[str, str], bytes, bytes]] | None:
            records = await read_all(self.bootstrap, self.prefix + DEAD_LETTERS.name, timeout=5)
            found = [({k: v.decode() for k, v in r.headers}, r.value, r.key) for r in records]
            return found if len(found) >= at_least else None

        return await wait_for(enough, timeout=30)


@pytest.fixture(scope="module")
async def meta(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Meta]:
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
        api_keys=f"bridge={KEY}",
        flood_window_s=3600,
        flood_max_per_sender=LIMIT,
    )
    service = build(common, settings)
    async with service._lifespan(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield Meta(kafka_bootstrap, prefix, client)


def messages_from(sender: str, mids: list[str]) -> dict[str, object]:
    events = [
        {
            "sender": {"id": sender},
            "recipient": {"id": "P"},
            "timestamp": 1,
            "message": {"mid": mid, "text": f"Help {mid}"},
        }
        for mid in mids
    ]
    return {"object": "page", "entry": [{"id": "P", "time": 1, "messaging": events}]}


async def test_a_flooded_meta_message_is_answered_200_and_set_aside_whole_to_be_replayed(meta: Meta) -> None:
    sender = str(uuid.uuid4().int)[:16]
    mids = [f"m_{uuid.uuid4().hex}" for _ in range(LIMIT + 2)]
    response = await meta.deliver(messages_from(sender, mids))
    assert (response.status_code, response.text) == (200, "EVENT_RECEIVED")  # Meta will not send these again
    await meta.identified(set(mids[:LIMIT]))

    aside = await meta.set_aside(at_least=2)
    kept = {IncidentReported.model_validate_json(value).data.channel_message_id for _, value, _ in aside}
    assert kept == set(mids[LIMIT:])  # the flooded ones, not lost
    headers, value, key = aside[0]
    assert headers["dlt.kind"] == "flooded" and f"social:facebook:{sender}" in headers["dlt.reason"]
    assert headers["dlt.origin.topic"] == meta.prefix + INCIDENTS_REPORTED.name
    assert (headers["dlt.origin.path"], headers["dlt.origin.channel"]) == ("http", "social")
    assert headers["message-type"] == "incident.reported" and headers["dlt.service"] == "intake"

    # Once the burst is over, the operator republishes each to dlt.origin.topic with the same key.
    for headers, value, key in aside:
        await produce(meta.bootstrap, headers["dlt.origin.topic"], value, key)
    assert await meta.identified(set(mids)) == set(mids)


async def test_a_burst_of_mentions_without_a_sender_on_one_post_is_not_flood_limited(meta: Meta) -> None:
    media, post = str(uuid.uuid4().int)[:17], f"100_{uuid.uuid4().int % 10**12}"
    comments = [str(uuid.uuid4().int)[:17] for _ in range(LIMIT + 3)]
    mentions = [{"field": "mentions", "value": {"media_id": media, "comment_id": c}} for c in comments]
    page_comments = [
        {"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": post, "comment_id": f"{post}_{c}"}}
        for c in comments
    ]
    instagram = {"object": "instagram", "entry": [{"id": "17841400000000001", "time": 1, "changes": mentions}]}
    page = {"object": "page", "entry": [{"id": "100", "time": 1, "changes": page_comments}]}
    assert (await meta.deliver(instagram)).status_code == 200
    assert (await meta.deliver(page)).status_code == 200
    expected = {f"instagram:comment:{c}" for c in comments} | {f"facebook:comment:{post}_{c}" for c in comments}
    assert await meta.identified(expected) == expected  # different people under one post: none held back


async def test_a_generic_social_message_over_the_limit_is_refused_with_429_not_dropped(meta: Meta) -> None:
    handle = f"@flood{uuid.uuid4().hex[:8]}@mastodon.example"
    answers = []
    for n in range(LIMIT + 1):
        body = {"platform": "mastodon", "kind": "mention", "message_id": f"{handle}-{n}",
                "author": {"handle": handle}, "text": "Help"}  # fmt: skip
        response = await meta.client.post("/v1/channels/social", json=body, headers={"X-API-Key": KEY})
        answers.append(response.status_code)
    assert answers == [202] * LIMIT + [429]  # the bridge keeps the last one and sends it again later
    assert "Retry-After" in response.headers
