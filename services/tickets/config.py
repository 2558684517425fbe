"""The ticket service's settings (environment variables prefixed ``TICKETS_``)."""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path

from pydantic import Field, FilePath, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from runtime.settings import HttpSettings

# Good enough for a laptop, never for a deployment: start-up warns loudly when it is in use.
DEV_JWT_SECRET = "helpdesk-dev-secret-not-for-production-use"


class Settings(HttpSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETS_", extra="ignore")

    http_port: int = Field(default=8002, ge=0, le=65535)
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/tickets.db",
        description="SQLAlchemy URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user:pw@host/db.",
    )
    jwt_secret: SecretStr = Field(
        default=SecretStr(DEV_JWT_SECRET),
        min_length=32,
        description="HS256 key that signs agents' tokens (at least 32 characters).",
    )
    jwt_issuer: str = Field(default="helpdesk", min_length=1)
    jwt_audience: str = Field(default="helpdesk-api", min_length=1)
    relay_batch_size: int = Field(default=500, ge=1, le=500, description="Events the relay publishes per round.")
    relay_poll_interval_ms: int = Field(
        default=50, ge=1, le=10_000, description="How often the relay looks for events appended by other replicas."
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description='Integrations\' API keys: a JSON object {"<name>": "<sha256 hex of the key>"} '
        "(mint one with python -m services.tickets.mint_token --api-key <name>).",
    )
    api_keys_file: FilePath | None = Field(
        default=None, description="A JSON file holding the same object as TICKETS_API_KEYS (e.g. a mounted Secret)."
    )
    reopen_window_s: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="How long after it was resolved or closed a ticket may be reopened (seconds).",
    )

    @field_validator("api_keys")
    @classmethod
    def _keys_are_digests(cls, keys: SecretStr | None) -> SecretStr | None:
        if keys is not None:
            parse_api_keys(keys.get_secret_value())
        return keys

    @field_validator("api_keys_file")
    @classmethod
    def _file_holds_digests(cls, path: Path | None) -> Path | None:
        if path is not None:
            parse_api_keys(path.read_text(encoding="utf-8"))
        return path

    @cached_property
    def integration_keys(self) -> dict[str, str]:
        """Integration name → sha256 hex digest of its key, from TICKETS_API_KEYS and TICKETS_API_KEYS_FILE."""
        keys = parse_api_keys(self.api_keys.get_secret_value()) if self.api_keys else {}
        if self.api_keys_file is not None:
            keys |= parse_api_keys(self.api_keys_file.read_text(encoding="utf-8"))
        return keys

    @property
    def uses_dev_secret(self) -> bool:
        return self.jwt_secret.get_secret_value() == DEV_JWT_SECRET


_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def parse_api_keys(text: str) -> dict[str, str]:
    """``{"<integration name>": "<sha256 hex>"}``; raises ValueError saying what is wrong.

    Only digests are configured: a leaked configuration gives no key away.
    """
    try:
        keys = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(keys, dict):
        raise ValueError('expected a JSON object {"<integration name>": "<sha256 hex of its key>"}')  # noqa: TRY004  (pydantic reports ValueError only)
    for name, digest in keys.items():
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name):
            raise ValueError(f"integration name {name!r}: use 1-100 letters, digits, '.', '_' or '-'")
        if not isinstance(digest, str) or not _SHA256_HEX.match(digest.lower()):
            raise ValueError(f"{name!r}: expected the 64 hex digits of the key's sha256, not the key itself")
    return {name: digest.lower() for name, digest in keys.items()}
