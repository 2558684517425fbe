"""The API's problem+json errors as typed exceptions.

Every exception raised for an HTTP error carries the server's problem
(``.problem``: type, title, status, detail and any extra member such as
``rule`` or ``errors``). Branch on the class (or ``.problem.slug``), show
``str(exc)`` (the problem's detail) to people.
"""

from __future__ import annotations

import httpx

from helpdesk_client.models import Problem


class HelpdeskError(Exception):
    """Anything this client raises on purpose."""


class TransportError(HelpdeskError):
    """The server could not be reached (or kept failing) after the retries allowed."""


class ApiError(HelpdeskError):
    """The server answered with an error."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail or problem.title or f"HTTP {problem.status}")
        self.problem = problem

    @property
    def status(self) -> int:
        return self.problem.status


class ValidationError(ApiError):
    """The request was malformed (422 invalid-request, 400 bad cursor or If-Match)."""


class Unauthorized(ApiError):
    """401: no credentials, or the token or API key was refused."""


class Forbidden(ApiError):
    """403: the credentials are valid but may not do this."""


class NotFound(ApiError):
    """404: no such ticket (or not one these credentials may see)."""


class ConflictError(ApiError):
    """The ticket is no longer at the version the write expected, or another write won the race.

    ``current_version`` is the ticket's version now when the server said it
    (a stale If-Match); read the ticket again and decide on what it is now.
    """

    def __init__(self, problem: Problem, current_version: int | None) -> None:
        super().__init__(problem)
        self.current_version = current_version


Conflict = ConflictError


class RuleViolation(ApiError):
    """A ticket rule forbids the change (409/422 ``ticket-rule``); ``rule`` names it."""

    @property
    def rule(self) -> str | None:
        return self.problem.extensions.get("rule")


class ServerError(ApiError):
    """5xx: the server failed; the request may be retried later."""


def problem_of(response: httpx.Response) -> Problem:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip()[:500]
        return Problem(
            type="about:blank",
            title=response.reason_phrase,
            status=response.status_code,
            detail=text,
        )
    body.setdefault("status", response.status_code)
    return Problem.model_validate(body)


def error_for(response: httpx.Response) -> ApiError:
    """The exception for an error answer (status >= 400)."""
    problem = problem_of(response)
    status, slug = response.status_code, problem.slug
    if status in (409, 412) and slug in (
        "stale-version",
        "version-mismatch",
        "concurrent-update",
    ):
        return ConflictError(problem, _current_version(problem, response))
    if slug == "ticket-rule":
        return RuleViolation(problem)
    if status == 401:
        return Unauthorized(problem)
    if status == 403:
        return Forbidden(problem)
    if status == 404:
        return NotFound(problem)
    if status in (409, 412):
        return ConflictError(problem, _current_version(problem, response))
    if status >= 500:
        return ServerError(problem)
    if status in (400, 422):
        return ValidationError(problem)
    return ApiError(problem)


def _current_version(problem: Problem, response: httpx.Response) -> int | None:
    # 409 stale-version says current_version; the older 412 said version (and the ETag).
    extensions = problem.extensions
    for key in ("current_version", "version"):
        if isinstance(extensions.get(key), int):
            return int(extensions[key])
    etag = response.headers.get("etag", "").strip().removeprefix("W/").strip('"')
    return int(etag) if etag.isdigit() else None
