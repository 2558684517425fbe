"""Notify settings (environment variables prefixed ``NOTIFY_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from runtime.settings import HttpSettings


class Settings(HttpSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    http_port: int = Field(default=8005, ge=0, le=65535)
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/notify.db",
        description="SQLAlchemy URL of notify's store (PostgreSQL: postgresql+asyncpg://...).",
    )
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server e-mails are handed to.")
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_from: str = Field(default="helpdesk@helpdesk.example", description="From: address of every e-mail.")
    smtp_starttls: bool = Field(default=False, description="Upgrade the connection with STARTTLS (and require it).")
    smtp_username: str | None = Field(default=None, description="Log in with this user (with NOTIFY_SMTP_PASSWORD).")
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Give up on an SMTP exchange after this long."
    )
