"""Routing's settings (environment variables prefixed ``ROUTING_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from runtime.settings import HttpSettings

HERE = Path(__file__).resolve().parent


class Settings(HttpSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTING_", extra="ignore")

    http_port: int = Field(default=8003, ge=0, le=65535)
    rules_file: Path = Field(
        default=HERE / "rules.yaml",  # found wherever the service is started from
        description="The priority and queue rules (YAML), validated at start-up and on every change.",
    )
    reload_interval_s: float = Field(
        default=2.0, gt=0, le=3600, description="How often the rules file is checked for changes."
    )
    agents_file: Path | None = Field(
        default=HERE / "agents.yaml",
        description="Agents written into the store at start-up (skills, languages, level, queues); empty: none.",
    )
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/routing.db",
        description="SQLAlchemy URL of routing's store (PostgreSQL: postgresql+asyncpg://...).",
    )

    @field_validator("agents_file", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
