"""Integrations' API keys on intake's HTTP endpoints."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI, Request

from services.intake.api import Rejected
from services.intake.api_keys import ApiKeys


def app_with(keys: ApiKeys) -> FastAPI:
    app = FastAPI()

    @app.get("/who", dependencies=[Depends(keys)])
    async def who(request: Request) -> dict[str, str | None]:
        return {"integration": getattr(request.state, "integration", None)}

    app.add_exception_handler(Rejected, lambda _r, exc: exc.response())  # type: ignore[arg-type, return-value]
    return app


async def get(app: FastAPI, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get("/who", headers=headers)


async def test_a_known_key_names_its_integration_in_either_header() -> None:
    app = app_with(ApiKeys("mailgw=s3cret-1, crm=s3cret-2"))
    assert (await get(app, {"Authorization": "Bearer s3cret-2"})).json() == {"integration": "crm"}
    assert (await get(app, {"X-API-Key": "s3cret-1"})).json() == {"integration": "mailgw"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "s3cret-1x"}, {"Authorization": "s3cret-1"}]
)
async def test_a_missing_or_unknown_key_is_refused_with_401_problem(headers: dict[str, str]) -> None:
    response = await get(app_with(ApiKeys("mailgw=s3cret-1")), headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_without_keys_the_endpoints_are_open() -> None:
    assert (await get(app_with(ApiKeys("")), {})).status_code == 200


def test_a_malformed_key_list_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="name=key"):
        ApiKeys("mailgw")
