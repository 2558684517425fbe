"""HTTP errors as RFC 7807 problem details (``application/problem+json``).

Every error body has ``type`` (``urn:helpdesk:problem:<slug>``, stable: clients
branch on it), ``title``, ``status`` and ``detail``; some add fields (``rule``
for a ticket rule, ``errors`` for invalid input).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"

# What the OpenAPI document says every error body is (extension members are optional).
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "urn:helpdesk:problem:<slug>; clients branch on it."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What is wrong, for people."},
        "rule": {"type": "string", "description": "ticket-rule: the ticket rule that forbids it."},
        "current_version": {"type": "integer", "description": "stale-version: the ticket's version now."},
        "errors": {
            "type": "array",
            "description": "invalid-request: each invalid input.",
            "items": {
                "type": "object",
                "properties": {"where": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
    },
}


def documented(description: str) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry for an error answered as a problem."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}


class Problem(Exception):
    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = headers or {}
        self.extensions = extensions

    def response(self) -> JSONResponse:
        body = {
            "type": f"urn:helpdesk:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extensions,
        }
        return JSONResponse(
            jsonable_encoder(body), status_code=self.status, headers=self.headers, media_type=PROBLEM_JSON
        )


def install(app: FastAPI) -> None:
    """Make every error the app answers a problem+json body."""

    async def on_problem(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return exc.response()

    async def on_invalid(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{"where": ".".join(str(p) for p in err["loc"]), "problem": err["msg"]} for err in exc.errors()]
        detail = "; ".join(f"{e['where']}: {e['problem']}" for e in errors[:3])
        return Problem(422, "invalid-request", "Invalid request", detail, errors=errors).response()

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return Problem(exc.status_code, slug, str(exc.detail), str(exc.detail), headers=exc.headers).response()

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(HTTPException, on_http)
