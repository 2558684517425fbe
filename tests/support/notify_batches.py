"""A notify process for the crash tests: feeds fixed notification requests to notify's
own handler, batch after batch, as its consumer would.

``python -m tests.support.notify_batches <database url> <smtp port> <count> [batch]``.
The requests' ids are derived from their index, so a second run is a redelivery of
the same messages (what Kafka does after a crash: the offsets of an unfinished batch
were never committed). A test kills the first run with SIGKILL mid-batch and runs it again.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

from contracts.notifications import (
    NotificationRequested,
    NotificationRequestedData,
    Recipient,
)
from runtime.consumer import Delivery
from services.notify.adapters.smtp import SmtpMailer
from services.notify.adapters.store import NotifyStore
from services.notify.config import Settings
from services.notify.handlers import NotificationRequestHandler, Outbox
from services.notify.rendering import Templates

NAMESPACE = uuid.UUID("6f0c2f0e-8d0a-4b7e-9a53-2b1f0d0c0a01")


def request(n: int) -> NotificationRequested:
    from datetime import UTC, datetime

    return NotificationRequested(
        event_id=uuid.uuid5(NAMESPACE, str(n)), ticket_id=uuid.uuid5(NAMESPACE, f"ticket-{n}"),
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC), correlation_id=f"crash-{n}",
        data=NotificationRequestedData(
            number=f"HD-{n}", recipient=Recipient(kind="level", id="L2", email=f"oncall+{n}@helpdesk.example"),
            method="email", template="ticket_escalated", subject=f"[HD-{n}] escalated to L2",
            context={"level": "2", "level_name": "L2", "queue": "L2-specialists"},
        ),
    )


async def main(url: str, smtp_port: int, count: int, batch: int) -> None:
    settings = Settings(database_url=url, smtp_port=smtp_port, smtp_timeout_s=5)
    store = NotifyStore(url)
    await store.create_schema()
    handler = NotificationRequestHandler(Outbox(store, SmtpMailer(settings), Templates(),
                                                record_every=settings.record_every, lanes=settings.parallel_sends))
    deliveries = [Delivery(request(n), "requests", 0, n, None) for n in range(count)]
    for start in range(0, count, batch):
        await handler(deliveries[start : start + batch])
        print(f"batch {start // batch} done", flush=True)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 100))
