"""Intake's settings (environment variables prefixed ``INTAKE_``)."""

from __future__ import annotations

from pathlib import Path

import phonenumbers
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from runtime.settings import HttpSettings

HERE = Path(__file__).resolve().parent


class Settings(HttpSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    http_port: int = Field(default=8001, ge=0, le=65535)
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/intake.db",
        description="Intake's database (the customer directory): sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    directory_topic: str = Field(
        default="helpdesk.directory.customers.v1",
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="Compacted topic (keyed by user id) a directory/CMDB integration publishes customers to.",
    )
    directory_file: Path = Field(
        default=HERE / "directory.example.yaml",  # found wherever the service is started from
        description="YAML or JSON file of customers, validated and written into the directory at every start-up.",
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

    smtp_enabled: bool = Field(default=True, description="Run the SMTP receiver (the e-mail channel).")
    smtp_host: str = Field(
        default="127.0.0.1", description="Address the SMTP receiver binds (0.0.0.0: every interface)."
    )
    smtp_port: int = Field(default=2526, ge=0, le=65535)
    smtp_hostname: str = Field(default="helpdesk-intake", max_length=253, description="Name the receiver greets with.")
    smtp_max_message_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest mail accepted (SIZE and DATA); larger gets 552."
    )
    smtp_max_sessions: int = Field(
        default=100, ge=1, le=100_000, description="SMTP connections served at once; one more is answered 421."
    )
    mail_trusted_authserv_ids: str = Field(
        default="",
        max_length=2000,
        description=(
            "Comma-separated authserv-ids of the receiving relay(s) whose Authentication-Results header is "
            "believed (e.g. mx.example.com); only the topmost such headers count."
        ),
    )
    mail_require_authentication: bool = Field(
        default=True,
        description=(
            "A mail is the customer's (identified by From:, threaded as a reply) only when a trusted relay's "
            "Authentication-Results say DMARC (or aligned SPF/DKIM) passed; false for a site whose relay adds none."
        ),
    )

    public_url: str | None = Field(
        default=None,
        description="Base URL providers reach intake at (https://helpdesk.example.com); webhook signatures cover it.",
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, description="Twilio auth token: verifies X-Twilio-Signature."
    )

    meta_app_secret: SecretStr | None = Field(
        default=None, description="Meta app secret: verifies X-Hub-Signature-256."
    )
    meta_verify_token: SecretStr | None = Field(
        default=None, description="The verify token set in Meta's webhook settings."
    )
    wait_for_ticket_s: float = Field(
        default=30.0, gt=0, description="How long a chat line or a call's end waits for the ticket the contact opened."
    )

    api_keys: SecretStr | None = Field(
        default=None,
        description=(
            "Integrations' keys, comma-separated: name[:scope+scope]=key or =sha256:<hex digest>; scopes report, "
            "read-directory, write-directory (none given: report). Required unless HELPDESK_DEVELOPMENT is on."
        ),
    )
    flood_window_s: float = Field(default=60.0, gt=0, description="The flood guard's window.")
    flood_max_per_sender: int = Field(
        default=30, ge=0, description="Contacts one sender may make per window and channel (0: no limit)."
    )
    flood_topic_max_per_sender: int = Field(
        default=0,
        ge=0,
        description=(
            "A limit per sender for incidents integrations publish straight onto the reported topic "
            "(0, the default: none; they are authenticated producers); a flooded one goes to the dead-letter topic."
        ),
    )

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{region!r} is not a region phone numbers are known for (e.g. GB, US, DE)")
        return region

    @property
    def trusted_authserv_ids(self) -> frozenset[str]:
        return frozenset(i.strip().lower() for i in self.mail_trusted_authserv_ids.split(",") if i.strip())
