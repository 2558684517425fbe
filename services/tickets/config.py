"""The ticket service's settings (environment variables prefixed ``TICKETS_``)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, FilePath, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from runtime.auth import parse_api_keys
from runtime.settings import HttpSettings


class Settings(HttpSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETS_", extra="ignore")

    http_port: int = Field(default=8002, ge=0, le=65535)
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/tickets.db",
        description="SQLAlchemy URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user:pw@host/db.",
    )
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
