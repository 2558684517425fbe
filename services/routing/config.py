"""Routing's settings (environment variables prefixed ``ROUTING_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from runtime.settings import HttpSettings

HERE = Path(__file__).resolve().parent


class Settings(HttpSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTING_", extra="ignore")

    http_port: int = Field(default=8003, ge=0, le=65535)
    rules_file: Path = Field(
        default=HERE / "rules.yaml",  # found wherever the service is started from
        description="The priority and queue rules (YAML), validated at start-up.",
    )
