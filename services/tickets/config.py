"""The ticket service's settings (environment variables prefixed ``TICKETS_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
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
    reopen_window_s: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="How long after it was resolved or closed a ticket may be reopened (seconds).",
    )

    @property
    def uses_dev_secret(self) -> bool:
        return self.jwt_secret.get_secret_value() == DEV_JWT_SECRET
