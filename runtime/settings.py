"""Configuration from the environment, with errors that name the variable.

Settings every service shares have no prefix (``KAFKA_BOOTSTRAP_SERVERS``);
a service's own settings carry its name as prefix (``TICKETS_DATABASE_URL``),
so five services can run side by side from one shell.
"""

from __future__ import annotations

import re
import sys
from typing import Literal, TypeVar

from pydantic import Field, FilePath, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)


class ConfigError(SystemExit):
    """Raised at start-up when the environment is wrong; exits with status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


class CommonSettings(BaseSettings):
    """Settings shared by every service."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092", description="Comma-separated host:port list of Kafka brokers."
    )
    kafka_topic_prefix: str = Field(
        default="", max_length=100, pattern=r"^[A-Za-z0-9._-]*$", description="Prefix put before every topic name."
    )
    kafka_client_id_suffix: str = Field(default="", description="Appended to client ids (e.g. the pod name).")
    kafka_max_attempts: int = Field(default=5, ge=1, le=50, description="Attempts before a message is dead-lettered.")
    kafka_retry_backoff_ms: int = Field(default=200, ge=0, le=60_000, description="First retry delay; doubles per attempt.")
    kafka_connect_timeout_s: float = Field(default=60.0, gt=0, description="How long start-up waits for Kafka.")
    helpdesk_development: bool = Field(
        default=False,
        description=(
            "Development only, never in a deployment: lets a service start without the credentials it would "
            "otherwise require (the ticket API's built-in token secret, intake without API keys). "
            "scripts/run and the tests set it; every service logs a warning when it is on."
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = Field(default="json", description="'console' for humans at a terminal.")

    # Security towards Kafka. PLAINTEXT is for a laptop; a deployment uses SASL_SSL with
    # one SCRAM principal per service, so ACLs can give each only the topics it needs.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How to talk to Kafka: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        default="SCRAM-SHA-512", description="SASL mechanism when the protocol is SASL_*."
    )
    kafka_sasl_username: str | None = Field(default=None, description="The service's Kafka principal (SASL_*).")
    kafka_sasl_password: SecretStr | None = Field(
        default=None, validate_default=True, description="Its password (SASL_*); from a Secret."
    )
    kafka_ssl_ca_file: FilePath | None = Field(
        default=None, description="PEM file of the CA that signed the brokers' certificates (SSL, SASL_SSL); system CAs if unset."
    )
    kafka_ssl_check_hostname: bool = Field(default=True, description="Check the broker's certificate names its host.")

    @field_validator("kafka_sasl_password")
    @classmethod
    def _sasl_needs_credentials(cls, password: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # Validated after the protocol and the username (field order), so both are known here.
        protocol = str(info.data.get("kafka_security_protocol", ""))
        has_credentials = bool(info.data.get("kafka_sasl_username")) and bool(password and password.get_secret_value())
        if protocol.startswith("SASL_") and not has_credentials:
            raise ValueError(
                f"KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are both required when KAFKA_SECURITY_PROTOCOL is {protocol}"
            )
        return password


class HttpSettings(BaseSettings):
    """Where a service listens; subclassed per service with its prefix and default port."""

    model_config = SettingsConfigDict(extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    shutdown_timeout_s: float = Field(default=20.0, gt=0, description="Time to drain in-flight work on SIGTERM.")
    max_request_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Largest request body accepted on any path (413 beyond it, before more is read).",
    )


def load(cls: type[S]) -> S:
    """Read ``cls`` from the environment, or raise :class:`ConfigError` naming each bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "") or ""
        lines = [f"invalid configuration for {cls.__name__}:"]
        for err in exc.errors(include_url=False):
            field = ".".join(str(p) for p in err["loc"])
            value = err.get("input")
            got = "" if isinstance(value, dict) else f" (got {_shown(cls, str(err['loc'][0]) if err['loc'] else '', value)})"
            lines.append(f"  {(prefix + field).upper()}: {err['msg']}{got}")
        raise ConfigError("\n".join(lines)) from None


_SECRET_NAMES = re.compile(r"secret|password|token|api_keys?$|credential", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?<=://)([^:/@\s]*):[^@/\s]*@")


def _shown(cls: type[BaseSettings], name: str, value: object) -> str:
    """How a bad value is quoted in an error: never a secret's value, nor the password in a URL."""
    field = cls.model_fields.get(name)
    annotation = repr(field.annotation) if field is not None else ""
    if "Secret" in annotation or _SECRET_NAMES.search(name):
        return "a value, not shown: it is a secret"
    return repr(_URL_PASSWORD.sub(r"\1:***@", value) if isinstance(value, str) else value)


def exit_on_config_error(exc: ConfigError) -> None:
    print(exc.message, file=sys.stderr)
    raise SystemExit(2)
