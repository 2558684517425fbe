"""Escalation settings (environment variables prefixed ``ESCALATION_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from runtime.settings import HttpSettings

SHIPPED_LEVELS = Path(__file__).with_name("levels.yaml")
SHIPPED_POLICIES = Path(__file__).with_name("sla.yaml")


class Settings(HttpSettings):
    model_config = SettingsConfigDict(env_prefix="ESCALATION_", extra="ignore")

    http_port: int = Field(default=8004, ge=0, le=65535)
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/escalation.db",
        description="SQLAlchemy URL of the deadlines store (PostgreSQL: postgresql+asyncpg://...).",
    )
    levels_file: Path = Field(default=SHIPPED_LEVELS, description="YAML file of the support levels.")
    policies_file: Path = Field(default=SHIPPED_POLICIES, description="YAML file of the SLA policies and calendars.")
    unclaimed_after_s: float | None = Field(
        default=None,
        gt=0,
        description="Demos and tests: replaces every policy's first-response target with this many seconds, "
        "counted 24x7. Unset in production.",
    )
    timer_interval_s: float = Field(
        default=0.2, gt=0, le=60, description="How often the timer looks for passed deadlines."
    )
    timer_batch: int = Field(default=500, ge=1, le=500, description="Most deadlines fired in one pass.")
    processed_events_retention_s: float = Field(
        default=7 * 24 * 3600,
        gt=0,
        description="How long the ids of applied ticket events are kept to recognise redeliveries "
        "(far longer than any Kafka redelivery).",
    )
    prune_interval_s: float = Field(
        default=3600, gt=0, description="How often ids older than the retention are deleted."
    )
