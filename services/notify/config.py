"""Notify settings (environment variables prefixed ``NOTIFY_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from runtime.settings import HttpSettings

SHIPPED_RECIPIENTS = Path(__file__).with_name("recipients.yaml")


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

    # Customers
    acknowledge_openings: bool = Field(
        default=True,
        description="E-mail the customer 'we have your request HD-12' when a ticket opens (see docs/notify.md).",
    )
    mail_public_notes: bool = Field(default=True, description="E-mail the customer each public note on their ticket.")
    reply_to: str | None = Field(default=None, description="Address customers reply to (default: NOTIFY_SMTP_FROM).")
    default_language: str = Field(default="en", min_length=2, max_length=10, description="Templates used when the customer's language has none.")

    # Agents and integrations
    recipients_file: Path = Field(
        default=SHIPPED_RECIPIENTS, description="YAML file: how each agent and level is notified, and the outbound webhooks."
    )
    http_timeout_s: float = Field(default=10.0, gt=0, le=120, description="Give up on a provider's HTTP call after this long.")
    http_ca_file: Path | None = Field(
        default=None,
        description="PEM file of CA certificates trusted for HTTPS to webhooks and providers, besides the public "
        "ones (e.g. the cluster's own CA for an in-cluster receiver).",
    )
    twilio_base_url: str = Field(default="https://api.twilio.com", description="Twilio (or compatible) API for SMS and calls.")
    twilio_account_sid: str = Field(default="AC00000000000000000000000000000000")
    twilio_auth_token: SecretStr = Field(default=SecretStr(""), description="Basic-auth password of the account SID.")
    twilio_from: str = Field(default="+15005550006", description="The number SMS and calls come from.")
    pagerduty_url: str = Field(default="https://events.pagerduty.com", description="PagerDuty Events API v2 base URL.")
    alertmanager_url: str = Field(default="http://127.0.0.1:9093", description="Alertmanager (or compatible) base URL.")
    webhook_attempts: int = Field(default=3, ge=1, le=10, description="Tries per webhook call before the consumer's retry.")

    # Rate limits (token buckets, per replica): what is held back is recorded and counted, never sent later.
    rate_per_recipient_per_min: float = Field(default=30, gt=0, description="Sustained notifications per recipient per minute.")
    rate_per_recipient_burst: int = Field(default=30, ge=1)
    rate_overall_per_s: float = Field(default=1000, gt=0, description="Sustained notifications per second, per method.")
    rate_overall_burst: int = Field(default=2000, ge=1)
    rate_phone_per_s: float = Field(default=2, gt=0, description="Sustained SMS and calls per second (they cost money).")
    rate_phone_burst: int = Field(default=50, ge=1)
    record_every: int = Field(
        default=20, ge=1, le=500,
        description="Notifications recorded as sent per store commit: the most a crash can send twice.",
    )
    parallel_sends: int = Field(
        default=8, ge=1, le=64, description="Notifications of a batch in flight at once (one SMTP connection each)."
    )
