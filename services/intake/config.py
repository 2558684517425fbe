"""Intake's settings (environment variables prefixed ``INTAKE_``)."""

from __future__ import annotations

from pathlib import Path

import phonenumbers
from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from runtime.settings import HttpSettings

HERE = Path(__file__).resolve().parent


class Settings(HttpSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    http_port: int = Field(default=8001, ge=0, le=65535)
    directory_file: Path = Field(
        default=HERE / "directory.example.yaml",  # found wherever the service is started from
        description="YAML or JSON file of known customers, loaded and validated at start-up.",
    )
    default_region: str = Field(
        default="GB",
        pattern=r"^[A-Z]{2}$",
        description="ISO country whose national format a phone number without +<country code> is read in.",
    )
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, description="Largest incident body accepted over HTTP.")
    publish_timeout_s: float = Field(
        default=10.0, gt=0, description="How long POST /v1/incidents waits for Kafka's acknowledgement before a 503."
    )

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{region!r} is not a region phone numbers are known for (e.g. GB, US, DE)")
        return region
