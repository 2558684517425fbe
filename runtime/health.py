"""Liveness and readiness.

``/healthz`` answers while the process's event loop runs (restart me if not).
``/readyz`` answers 200 only when every readiness check passes (Kafka reachable,
database answering, background workers alive), else 503 with what failed, so
an orchestrator sends no traffic to a replica that cannot do its work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[bool]]


class Readiness:
    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self.started = False
        self.stopping = False

    def add(self, name: str, check: Check) -> None:
        self._checks[name] = check

    async def report(self, timeout: float = 2.0) -> dict[str, bool]:
        results: dict[str, bool] = {"started": self.started, "not_stopping": not self.stopping}
        for name, check in self._checks.items():
            try:
                results[name] = bool(await asyncio.wait_for(check(), timeout))
            except Exception:  # noqa: BLE001 - a failing check is a "no", not a crash
                results[name] = False
        return results


def health_router(readiness: Readiness) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        report = await readiness.report()
        ok = all(report.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": report}, status_code=200 if ok else 503)

    return router
