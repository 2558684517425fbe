"""Started without credentials configured, and without the development switch, a service refuses to run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(service: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "HELPDESK_DEVELOPMENT"))}
    clean |= {f"{service.upper()}_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", **env}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", f"services.{service}"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("service", ["tickets", "routing", "escalation"])
def test_without_a_way_to_check_tokens_a_service_refuses_to_start(service: str, tmp_path: Path) -> None:
    refused = start(service, tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "AUTH_JWKS_URL" in refused.stderr and "HELPDESK_DEVELOPMENT" in refused.stderr


def test_a_secret_too_short_is_refused_without_being_printed(tmp_path: Path) -> None:
    refused = start("tickets", tmp_path, AUTH_JWT_SECRET="hunter2-is-short")
    assert refused.returncode == 2
    assert "AUTH_JWT_SECRET" in refused.stderr and "hunter2" not in refused.stderr
