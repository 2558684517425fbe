"""problem+json answers become typed exceptions that keep the problem's fields."""

from __future__ import annotations

import httpx
import pytest
from helpdesk_client import errors

P = "urn:helpdesk:problem:"


def answer(
    status: int,
    slug: str | None,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> httpx.Response:
    if slug is None:
        return httpx.Response(status, text="Bad Gateway from the proxy", headers=headers)
    body = {
        "type": P + slug,
        "title": "t",
        "status": status,
        "detail": f"{slug} happened",
        **extra,
    }
    return httpx.Response(
        status,
        json=body,
        headers={"content-type": "application/problem+json", **(headers or {})},
    )


@pytest.mark.parametrize(
    ("status", "slug", "kind"),
    [
        (401, "invalid-token", errors.Unauthorized),
        (401, "unauthenticated", errors.Unauthorized),
        (403, "forbidden", errors.Forbidden),
        (404, "ticket-not-found", errors.NotFound),
        (409, "ticket-rule", errors.RuleViolation),
        (422, "ticket-rule", errors.RuleViolation),
        (409, "concurrent-update", errors.ConflictError),
        (422, "invalid-request", errors.ValidationError),
        (400, "invalid-cursor", errors.ValidationError),
        (500, "http-error", errors.ServerError),
        (502, None, errors.ServerError),
    ],
)
def test_each_answer_raises_its_exception(status: int, slug: str | None, kind: type[errors.ApiError]) -> None:
    error = errors.error_for(answer(status, slug))
    assert type(error) is kind and error.status == status
    assert str(error) == (f"{slug} happened" if slug else "Bad Gateway from the proxy")


def test_a_stale_write_is_a_conflict_with_the_current_version_whether_409_or_the_older_412() -> None:
    new = errors.error_for(answer(409, "stale-version", current_version=7))
    old = errors.error_for(answer(412, "version-mismatch", version=7))
    etag_only = errors.error_for(answer(412, "version-mismatch", headers={"ETag": '"7"'}))
    for error in (new, old, etag_only):
        assert isinstance(error, errors.ConflictError) and error.current_version == 7
    assert errors.Conflict is errors.ConflictError


def test_the_problems_extra_members_are_kept() -> None:
    error = errors.error_for(answer(409, "ticket-rule", rule="only_owner_can_resolve"))
    assert isinstance(error, errors.RuleViolation) and error.rule == "only_owner_can_resolve"
    assert error.problem.slug == "ticket-rule" and error.problem.extensions == {"rule": "only_owner_can_resolve"}
