"""Every service caps request bodies and checks credentials before anything reads the body.

The requests go straight into each service's real ASGI application (as uvicorn would hand
them over), with a ``receive`` that counts how much of the body the service pulled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.service import Service
from runtime.settings import CommonSettings
from tests.support.tokens import development_bearer

MiB = 1024 * 1024
CHUNK = 64 * 1024


def services(tmp_path: Path) -> dict[str, Callable[[], Service]]:
    from services.escalation import bootstrap as escalation
    from services.escalation.config import Settings as EscalationSettings
    from services.intake import bootstrap as intake
    from services.intake.config import Settings as IntakeSettings
    from services.notify import bootstrap as notify
    from services.notify.config import Settings as NotifySettings
    from services.routing import bootstrap as routing
    from services.routing.config import Settings as RoutingSettings
    from services.tickets import bootstrap as tickets
    from services.tickets.config import Settings as TicketSettings

    common = CommonSettings()

    def db(name: str) -> str:
        return f"sqlite+aiosqlite:///{tmp_path / name}.db"

    return {
        "intake": lambda: intake.build(common, IntakeSettings(database_url=db("intake"))),
        "tickets": lambda: tickets.build(common, TicketSettings(database_url=db("tickets"))),
        "routing": lambda: routing.build(common, RoutingSettings(database_url=db("routing"))),
        "escalation": lambda: escalation.build(common, EscalationSettings(database_url=db("escalation"))),
        "notify": lambda: notify.build(common, NotifySettings(database_url=db("notify"))),
    }


class Upload:
    """A request body sent in chunks, counting how many the application asked for."""

    def __init__(self, size: int, fill: bytes = b"{") -> None:
        self.left = size
        self.pulled = 0
        self.fill = fill

    async def receive(self) -> dict[str, Any]:
        if self.left <= 0:
            await asyncio.sleep(3600)  # a client that sent everything waits for the answer
        chunk = min(CHUNK, self.left)
        self.left -= chunk
        self.pulled += chunk
        return {"type": "http.request", "body": (self.fill * chunk)[:chunk], "more_body": self.left > 0}


async def call(app: Any, method: str, path: str, upload: Upload, headers: dict[str, str]) -> tuple[int, bytes]:
    answer: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    await asyncio.wait_for(app(scope, upload.receive, send), 30)
    return answer["status"], answer["body"]


PATHS = {
    "intake": "/v1/incidents",
    "tickets": "/v1/tickets/HD-1/notes",
    "routing": "/v1/agents/net-1",
    "escalation": "/v1/tickets/00000000-0000-0000-0000-000000000000/deadlines",
    "notify": "/v1/anything",
}


@pytest.mark.parametrize("service", list(PATHS))
async def test_a_body_declared_over_the_limit_is_refused_before_a_byte_is_read(service: str, tmp_path: Path) -> None:
    app = services(tmp_path)[service]().app
    upload = Upload(30 * MiB)
    headers = {"content-type": "application/json", "content-length": str(30 * MiB), **development_bearer()}
    status, body = await call(app, "PUT" if service == "routing" else "POST", PATHS[service], upload, headers)
    assert status == 413, body
    assert b"at most 262144 bytes" in body and upload.pulled == 0


@pytest.mark.parametrize("service", ["intake", "tickets", "routing"])  # the others read no request body
async def test_a_body_without_a_length_is_cut_off_at_the_limit(service: str, tmp_path: Path) -> None:
    app = services(tmp_path)[service]().app
    upload = Upload(30 * MiB)
    headers = {"content-type": "application/json", **development_bearer("lead-1", ("agent", "lead"))}
    status, body = await call(app, "PUT" if service == "routing" else "POST", PATHS[service], upload, headers)
    assert status == 413, body
    assert upload.pulled <= 256 * 1024 + CHUNK


@pytest.mark.parametrize("service", ["tickets", "routing", "escalation"])
async def test_an_anonymous_request_is_refused_before_its_body_is_read(service: str, tmp_path: Path) -> None:
    app = services(tmp_path)[service]().app
    upload = Upload(200 * 1024)  # under the limit: the credential alone decides
    status, body = await call(app, "PUT" if service == "routing" else "POST", PATHS[service], upload, {})
    assert status == 401 and b"Authentication required" in body
    assert upload.pulled == 0


@pytest.mark.parametrize(
    "service, method, path, roles, status",
    [
        ("routing", "GET", "/v1/agents", None, 401),
        ("routing", "GET", "/v1/agents", ("customer",), 403),
        ("routing", "PUT", "/v1/agents/net-1", ("agent",), 403),
        ("routing", "GET", "/v1/rules/status", None, 401),
        ("escalation", "GET", "/v1/sla/metrics", None, 401),
        ("escalation", "GET", "/v1/sla/metrics", ("customer",), 403),
        ("escalation", "GET", "/v1/tickets/00000000-0000-0000-0000-000000000000/deadlines", ("customer",), 403),
    ],
)
async def test_routing_and_escalation_serve_only_the_desks_people(
    service: str, method: str, path: str, roles: tuple[str, ...] | None, status: int, tmp_path: Path
) -> None:
    app = services(tmp_path)[service]().app
    headers = development_bearer("someone", roles) if roles else {}
    if method == "PUT":
        headers["content-type"] = "application/json"
    got, body = await call(app, method, path, Upload(2 if method == "PUT" else 0, fill=b"{}"), headers)
    assert got == status, body


@pytest.mark.parametrize("service", list(PATHS))
async def test_health_readiness_and_metrics_need_no_credential(service: str, tmp_path: Path) -> None:
    app = services(tmp_path)[service]().app
    status, _ = await call(app, "GET", "/metrics", Upload(0), {})
    assert status == 200
