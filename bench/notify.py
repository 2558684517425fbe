"""Benchmark of notify's sending: e-mails to a local SMTP sink, webhooks to a local HTTP sink.

    bench/notify [--emails 2000] [--webhooks 2000] [--batch 500] [--postgres postgresql+asyncpg://...]

Runs notify's own consumers' handlers (no Kafka: the batches are what the
consumer would hand them) against a fresh store (SQLite, or a new database on
the PostgreSQL server given). E-mails are ``notification.requested`` e-mails,
each rendered from its template and handed to ``devtools.mailbox`` (a real
SMTP server in a subprocess) through one SMTP connection per batch. Webhooks
are ticket events sent, signed, to a small HTTP server in a subprocess. Each
notification is recorded as sent, as in the service. Afterwards the sinks'
counts are checked, and a redelivered batch must send nothing more.

Progress goes to stderr; the last line on stdout is JSON with ``emails_per_s``
and ``webhooks_per_s`` (wall clock), notify's own CPU per e-mail and per webhook
(the sinks run in other processes), and the machine's load, which the wall-clock
figures depend on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from contracts.envelope import new_envelope
from contracts.notifications import (
    NotificationRequested,
    NotificationRequestedData,
    Recipient,
)
from contracts.tickets import TicketResolved, TicketResolvedData
from devtools.processes import free_port
from runtime.consumer import Delivery
from runtime.logs import configure_logging
from services.notify.adapters.providers import HttpProviders
from services.notify.adapters.smtp import SmtpMailer
from services.notify.adapters.store import NotifyStore
from services.notify.bootstrap import rate_limits
from services.notify.config import Settings
from services.notify.handlers import (
    NotificationRequestHandler,
    Outbox,
    TicketEventHandler,
)
from services.notify.recipients import load_recipients
from services.notify.rendering import Templates

Batch = list[Delivery[Any]]


def progress(message: str) -> None:
    print(f"[bench/notify] {message}", file=sys.stderr, flush=True)


def email_requests(count: int) -> list[Any]:
    return [
        new_envelope(NotificationRequested, NotificationRequestedData(
            number=f"HD-{n}", recipient=Recipient(kind="level", id="L2", email=f"oncall+{n}@helpdesk.example"),
            method="email", template="ticket_escalated", subject=f"[HD-{n}] escalated to L2",
            context={"level": "2", "level_name": "L2", "queue": "L2-specialists", "reason": "unclaimed for 15 min"},
        ), ticket_id=uuid.uuid4())
        for n in range(count)
    ]


def ticket_events(count: int) -> list[Any]:
    return [
        new_envelope(TicketResolved, TicketResolvedData(
            number=f"HD-{n}", version=5, resolution="Replaced the fuser unit.", resolved_by="agent-7"),
            ticket_id=uuid.uuid4())
        for n in range(count)
    ]


def batches(messages: list[Any], size: int, topic: str) -> list[Batch]:
    deliveries = [Delivery(m, topic, 0, n, None) for n, m in enumerate(messages)]
    return [deliveries[i : i + size] for i in range(0, len(deliveries), size)]


async def timed(handler: Callable[[Batch], Awaitable[None]], work: list[Batch], name: str) -> tuple[float, float]:
    """(per second, wall clock; notify's own CPU microseconds each: the sinks run in other processes)."""
    total = sum(len(b) for b in work)
    started, cpu = time.perf_counter(), time.process_time()
    for n, batch in enumerate(work, start=1):
        await handler(batch)
        progress(f"{name}: {n}/{len(work)} batches")
    rate, cpu = total / (time.perf_counter() - started), time.process_time() - cpu
    await handler(work[-1])  # redelivered: must send nothing
    return round(rate, 1), round(cpu / total * 1e6, 1)


def start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


async def count_received(http_port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    writer.write(b"GET /count HTTP/1.0\r\nHost: x\r\n\r\n")
    raw = await reader.read()
    writer.close()
    return int(raw.split(b"\r\n\r\n", 1)[1])


def quiet_json_logs(level: str) -> None:
    """The services' logging (JSON), rendered but written to /dev/null, so its cost counts."""
    configure_logging("bench", level)
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process


async def run(args: argparse.Namespace) -> dict[str, Any]:
    quiet_json_logs(args.log_level)
    with tempfile.TemporaryDirectory() as folder:
        smtp_port, http_port = free_port(), free_port()
        mailbox = start(["-m", "devtools.mailbox", "--port", str(smtp_port), "--dir", f"{folder}/mail"])
        sink = start(["-m", "bench.notify", "--serve-http", str(http_port)])
        try:
            await wait_listening(smtp_port)
            await wait_listening(http_port)
            recipients_file = Path(folder) / "recipients.yaml"
            recipients_file.write_text(
                f"webhooks:\n  - {{name: bench, url: 'http://127.0.0.1:{http_port}/hook', secret_env: BENCH_SECRET,"
                " events: [ticket.resolved], allow_http: true}\n")
            url = args.postgres or f"sqlite+aiosqlite:///{folder}/notify.db"
            settings = Settings(database_url=url, smtp_port=smtp_port, recipients_file=recipients_file)
            recipients = load_recipients(recipients_file, {"BENCH_SECRET": "bench"})
            store = NotifyStore(url)
            await store.create_schema()
            providers = HttpProviders(settings, recipients)
            outbox = Outbox(store, SmtpMailer(settings), Templates(), {"webhook": providers}, rate_limits(settings))
            try:
                emails = await timed(NotificationRequestHandler(outbox, recipients),
                                     batches(email_requests(args.emails), args.batch, "requests"), "e-mails")
                webhooks = await timed(TicketEventHandler(store, outbox, recipients=recipients),
                                       batches(ticket_events(args.webhooks), args.batch, "events"), "webhooks")
            finally:
                await providers.close()
                await store.close()
            await asyncio.sleep(0.5)
            mailed = len(list(Path(f"{folder}/mail").glob("*.eml")))
            hooked = await count_received(http_port)
        finally:
            for process in (mailbox, sink):
                process.terminate()
                process.wait()
    assert mailed == args.emails, f"{mailed} e-mails received, expected {args.emails}"
    assert hooked == args.webhooks, f"{hooked} webhooks received, expected {args.webhooks}"
    return {"database": "postgresql" if args.postgres else "sqlite", "batch": args.batch, "emails": args.emails,
            "webhooks": args.webhooks, "emails_per_s": emails[0], "webhooks_per_s": webhooks[0],
            "cpu_us_per_email": emails[1], "cpu_us_per_webhook": webhooks[1], "cores": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 1)}


def serve_http(port: int) -> None:
    """The HTTP sink: answers 202 to every POST and counts them (GET /count)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    received = 0

    async def hook(request: Any) -> PlainTextResponse:
        nonlocal received
        await request.body()
        received += 1
        return PlainTextResponse("ok", status_code=202)

    async def count(_request: Any) -> PlainTextResponse:
        return PlainTextResponse(str(received))

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"]), Route("/count", count)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500, help="deliveries per consumer batch (Kafka: up to 500)")
    parser.add_argument("--log-level", default="INFO", help="the services' LOG_LEVEL (default INFO, as deployed)")
    parser.add_argument("--postgres", metavar="URL", help="use this PostgreSQL database (it must exist)")
    parser.add_argument("--serve-http", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_http:
        serve_http(args.serve_http)
        return
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
