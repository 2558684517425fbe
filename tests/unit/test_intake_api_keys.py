"""Integrations' API keys on intake's HTTP endpoints: who may report, who may read or change the directory."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from fastapi import Depends, FastAPI, Request

from services.intake.api import Rejected
from services.intake.api_keys import READ_DIRECTORY, REPORT, WRITE_DIRECTORY, ApiKeys, main


def app_with(keys: ApiKeys) -> FastAPI:
    app = FastAPI()
    for scope in (REPORT, READ_DIRECTORY, WRITE_DIRECTORY):

        @app.get(f"/{scope}", dependencies=[Depends(keys.require(scope))])
        async def who(request: Request) -> dict[str, str | None]:
            return {"integration": getattr(request.state, "integration", None)}

    app.add_exception_handler(Rejected, lambda _r, exc: exc.response())  # type: ignore[arg-type, return-value]
    return app


async def get(app: FastAPI, scope: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get(f"/{scope}", headers=headers)


async def test_a_known_key_names_its_integration_in_either_header() -> None:
    app = app_with(ApiKeys("mailgw=s3cret-1, crm=s3cret-2"))
    assert (await get(app, REPORT, {"Authorization": "Bearer s3cret-2"})).json() == {"integration": "crm"}
    assert (await get(app, REPORT, {"X-API-Key": "s3cret-1"})).json() == {"integration": "mailgw"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "s3cret-1x"}, {"Authorization": "s3cret-1"}]
)
async def test_a_missing_or_unknown_key_is_refused_with_401_problem(headers: dict[str, str]) -> None:
    response = await get(app_with(ApiKeys("mailgw=s3cret-1")), REPORT, headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_key_written_as_name_equals_key_may_report_but_not_touch_the_directory() -> None:
    app = app_with(ApiKeys("webform=k-1"))
    assert (await get(app, REPORT, {"X-API-Key": "k-1"})).status_code == 200
    for scope in (READ_DIRECTORY, WRITE_DIRECTORY):
        refused = await get(app, scope, {"X-API-Key": "k-1"})
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
        assert "'webform' has no" in refused.json()["detail"] and scope in refused.json()["detail"]


async def test_scopes_give_exactly_what_they_name_and_writing_the_directory_includes_reading_it() -> None:
    app = app_with(ApiKeys("hr:write-directory=k-hr, portal:report+read-directory=k-portal"))
    statuses = {
        (key, scope): (await get(app, scope, {"X-API-Key": key})).status_code
        for key in ("k-hr", "k-portal")
        for scope in (REPORT, READ_DIRECTORY, WRITE_DIRECTORY)
    }
    assert statuses == {
        ("k-hr", REPORT): 403, ("k-hr", READ_DIRECTORY): 200, ("k-hr", WRITE_DIRECTORY): 200,
        ("k-portal", REPORT): 200, ("k-portal", READ_DIRECTORY): 200, ("k-portal", WRITE_DIRECTORY): 403,
    }  # fmt: skip


async def test_a_key_may_be_configured_as_its_sha256_so_the_configuration_gives_no_key_away() -> None:
    digest = hashlib.sha256(b"the-real-key").hexdigest()
    app = app_with(ApiKeys(f"crm:report=sha256:{digest}"))
    assert (await get(app, REPORT, {"X-API-Key": "the-real-key"})).json() == {"integration": "crm"}
    assert (await get(app, REPORT, {"X-API-Key": f"sha256:{digest}"})).status_code == 401  # the digest is no key


async def test_the_development_switch_opens_every_endpoint_and_nothing_else_does() -> None:
    assert (await get(app_with(ApiKeys.open_to_anyone()), WRITE_DIRECTORY, {})).status_code == 200
    assert (await get(app_with(ApiKeys("")), REPORT, {})).status_code == 401  # no keys is not "open"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("mailgw", "name=key"),
        ("crm:report+admin=k", "unknown scope 'admin'"),
        ("bad name=k", "integration name 'bad name'"),
        ("crm=k1,crm=k2", "named twice"),
    ],
)
def test_a_malformed_key_list_is_a_configuration_error_that_says_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ApiKeys(spec)


async def test_a_minted_key_works_with_the_entry_printed_for_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hr", "--scopes", "read-directory"]) == 0
    out, err = capsys.readouterr()
    entry = err.split(": ", 1)[1].strip()
    assert entry.startswith("hr:read-directory=sha256:") and out.strip() not in entry
    assert (await get(app_with(ApiKeys(entry)), READ_DIRECTORY, {"X-API-Key": out.strip()})).status_code == 200
