"""What every service does to a request before its own code sees it: cap the body, check the credentials.

:class:`RequestGuard` is an ASGI middleware every :class:`~runtime.service.Service` installs.
It answers 413 to a body over the service's limit (``<SERVICE>_MAX_REQUEST_BYTES``, 256 KiB
by default) whatever ``Content-Length`` claims, without reading more than the limit; and on a
service that serves people it checks the credentials of every request but the operational
paths (health, readiness, metrics, the OpenAPI document) *before* the body is read, so an
anonymous caller cannot make a service parse 30 MiB to be told 401. The caller it found is
handed to the endpoints through :func:`caller` (``request.state.caller``).
"""

# No `from __future__ import annotations`: FastAPI reads caller's annotations at run time.

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.auth import Authenticator, Caller, CallerKind, require
from runtime.problems import Problem

API_KEY_HEADER = "X-API-Key"
OPERATIONS_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)


class RequestTooLarge(HTTPException):
    """Raised from ``receive`` when the body outgrows the limit (FastAPI passes HTTPExceptions through)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"a request body may be at most {limit} bytes")
        self.limit = limit


@dataclass
class Guard:
    """What the middleware enforces; a service's wiring fills it in before the app serves."""

    max_body_bytes: int
    authenticate: Authenticator | None = None
    open_paths: frozenset[str] = field(default=OPERATIONS_PATHS)
    # Paths whose own code checks the caller another way (a provider's signature, a widget's session).
    unauthenticated: Callable[[str], bool] = field(default=lambda _path: False)

    def needs_credentials(self, path: str) -> bool:
        return self.authenticate is not None and path not in self.open_paths and not self.unauthenticated(path)


class RequestGuard:
    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.guard.max_body_bytes
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _answer(_too_large(limit), scope, receive, send)
            return
        if self.guard.needs_credentials(scope["path"]):
            assert self.guard.authenticate is not None
            try:
                who = await self.guard.authenticate(headers.get("authorization"), headers.get(API_KEY_HEADER.lower()))
            except Problem as problem:
                await _answer(problem, scope, receive, send)
                return
            scope.setdefault("state", {})["caller"] = who
        started = False

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                counting_receive.read += len(message.get("body", b""))  # type: ignore[attr-defined]
                if counting_receive.read > limit:  # type: ignore[attr-defined]
                    raise RequestTooLarge(limit)
            return message

        counting_receive.read = 0  # type: ignore[attr-defined]

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except RequestTooLarge:
            if started:
                raise
            await _answer(_too_large(limit), scope, receive, send)


def _too_large(limit: int) -> Problem:
    return Problem(413, "body-too-large", "Body too large", f"a request body may be at most {limit} bytes")


async def _answer(problem: Problem, scope: Scope, receive: Receive, send: Send) -> None:
    await problem.response()(scope, receive, send)


# --- the caller, for endpoints ------------------------------------------------------------------------


def caller_dependency(
    bearer_description: str = "A person's token (JWT): an agent's, a lead's or a customer's.",
    api_key_description: str | None = None,
) -> Callable[..., Awaitable[Caller]]:
    """A FastAPI dependency giving the caller :class:`RequestGuard` authenticated.

    The security schemes are declared for the OpenAPI document only: the guard has checked the
    credentials before the request got here.
    """
    bearer = HTTPBearer(auto_error=False, description=bearer_description)
    if api_key_description is None:

        async def person(
            request: Request, _token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
        ) -> Caller:
            return _caller(request)

        return person
    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description=api_key_description)

    async def person_or_integration(
        request: Request,
        _token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        _key: Annotated[str | None, Depends(key_header)],
    ) -> Caller:
        return _caller(request)

    return person_or_integration


def _caller(request: Request) -> Caller:
    found: Any = getattr(request.state, "caller", None)
    if not isinstance(found, Caller):  # a wiring mistake, not the caller's: never serve without a credential
        raise RuntimeError(f"{request.url.path} is served without the credential check of runtime.http.RequestGuard")  # noqa: TRY004
    return found


def people(
    *, kinds: tuple[CallerKind, ...] = ("agent",), lead: bool = False, doing: str
) -> Callable[..., Awaitable[Caller]]:
    """A dependency admitting only callers of ``kinds`` (and only leads, when ``lead``); 403 otherwise."""
    authenticated = caller_dependency("An agent's or team lead's token (JWT).")

    async def admitted(caller: Annotated[Caller, Depends(authenticated)]) -> Caller:
        require(caller, kinds=kinds, lead=lead, doing=doing)
        return caller

    return admitted
