"""``/v1/customers/{user_id}``: the customer directory over HTTP (GET, PUT, DELETE).

For an HR system, a CMDB or an admin tool that keeps customers one by one.
A PUT replaces the whole entry (what it leaves out is cleared); the phone
number is stored in E.164. Answers are the entry as stored; errors are
``application/problem+json``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from services.intake.adapters.directory_store import DirectoryStore
from services.intake.api import Rejected, read_limited
from services.intake.customer_entry import CustomerEntry
from services.intake.domain import Customer, DuplicateCustomer

MAX_ENTRY_BYTES = 64 * 1024
_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or unknown API key.", "content": {"application/problem+json": {}}},
    403: {"description": "The key's integration lacks the scope.", "content": {"application/problem+json": {}}},
}


Allowed = Callable[[Request], Awaitable[None]]


def customers_router(store: DirectoryStore, region: str, may_read: Allowed, may_write: Allowed) -> APIRouter:
    """The directory over HTTP: reading needs the read-directory scope, changing it write-directory."""
    router = APIRouter(tags=["customers"], responses=_AUTH_RESPONSES)

    @router.get("/v1/customers/{user_id}", summary="A customer of the directory", dependencies=[Depends(may_read)])
    async def get_customer(user_id: str) -> JSONResponse:
        customer = await store.get(user_id)
        if customer is None:
            return _not_found(user_id)
        return JSONResponse(as_json(customer))

    @router.put("/v1/customers/{user_id}", summary="Add or replace a customer", dependencies=[Depends(may_write)])
    async def put_customer(user_id: str, request: Request) -> JSONResponse:
        try:
            customer = _customer(user_id, await read_limited(request, MAX_ENTRY_BYTES), region)
            existed = await store.get(user_id) is not None
            await store.put(customer, source="api")
        except Rejected as rejected:
            return rejected.response()
        except DuplicateCustomer as exc:
            return Rejected(409, "Already another customer's", str(exc)).response()
        return JSONResponse(as_json(customer), status_code=200 if existed else 201)

    @router.delete(
        "/v1/customers/{user_id}", status_code=204, summary="Remove a customer", dependencies=[Depends(may_write)]
    )
    async def delete_customer(user_id: str) -> Response:
        if not await store.remove(user_id):
            return _not_found(user_id)
        return Response(status_code=204)

    return router


def _customer(user_id: str, body: bytes, region: str) -> Customer:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise Rejected(400, "Body is not JSON", f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise Rejected(422, "Invalid customer", "expected a JSON object with the customer's fields")
    if document.setdefault("user_id", user_id) != user_id:
        raise Rejected(422, "Invalid customer", f"user_id in the body ({document['user_id']!r}) differs from the URL")
    try:
        return CustomerEntry.model_validate(document).customer(region)
    except ValidationError as exc:
        errors = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors(include_url=False)]
        raise Rejected.invalid(errors) from None
    except ValueError as exc:
        raise Rejected.invalid([{"field": "phone", "message": str(exc).removeprefix("phone: ")}]) from None


def as_json(customer: Customer) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(customer).items()}


def _not_found(user_id: str) -> JSONResponse:
    return Rejected(404, "No such customer", f"no customer with user_id {user_id!r}").response()
