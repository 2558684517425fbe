"""A real HTTP server for tests that records every request a provider would get.

``with ProviderSink() as sink:`` serves on 127.0.0.1 at a free port (``sink.url``)
from a thread (uvicorn + starlette). Every request is recorded (method, path,
headers, body); the answer is 202 unless a test scripts otherwise:
``sink.fail(status=500, times=3)`` answers the next three with 500,
``sink.stall(seconds=5, times=1)`` makes the next one hang (a provider timing
out). ``await sink.wait_for(n)`` waits until ``n`` requests have been answered
with success.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.smtp_sink import free_port


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


class ProviderSink:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(host)
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._script: list[tuple[str, float]] = []  # ("status", code) or ("stall", seconds)
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "PUT", "GET"])])
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def accepted(self) -> list[Recorded]:
        return [r for r in self.requests if r.status < 300]

    def fail(self, status: int = 500, times: int = 1) -> None:
        with self._lock:
            self._script.extend([("status", float(status))] * times)

    def recover(self) -> None:
        """Forget the scripted failures: every later request is answered 202."""
        with self._lock:
            self._script.clear()

    def stall(self, seconds: float, times: int = 1) -> None:
        with self._lock:
            self._script.extend([("stall", seconds)] * times)

    async def _handle(self, request: Request) -> JSONResponse:
        body = await request.body()
        with self._lock:
            action = self._script.pop(0) if self._script else ("status", 202.0)
        if action[0] == "stall":
            await asyncio.sleep(action[1])
            status = 504
        else:
            status = int(action[1])
        with self._lock:
            self._requests.append(Recorded(request.method, request.url.path, dict(request.headers), body, status))
        return JSONResponse({"status": "success" if status < 300 else "error"}, status_code=status)

    def start(self) -> ProviderSink:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the provider sink never started")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> ProviderSink:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Recorded]:
        """At least ``count`` successfully answered requests, or AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} accepted request(s) within {timeout}s, got {len(self.accepted)}")
            await asyncio.sleep(0.02)
        return self.accepted
