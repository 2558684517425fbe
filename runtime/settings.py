"""Configuration from the environment, with errors that name the variable.

Settings every service shares have no prefix (``KAFKA_BOOTSTRAP_SERVERS``);
a service's own settings carry its name as prefix (``TICKETS_DATABASE_URL``),
so five services can run side by side from one shell.
"""

from __future__ import annotations

import sys
from typing import Literal, TypeVar

from pydantic import Field, ValidationError
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
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = Field(default="json", description="'console' for humans at a terminal.")


class HttpSettings(BaseSettings):
    """Where a service listens; subclassed per service with its prefix and default port."""

    model_config = SettingsConfigDict(extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    shutdown_timeout_s: float = Field(default=20.0, gt=0, description="Time to drain in-flight work on SIGTERM.")


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
            got = "" if isinstance(value, dict) else f" (got {value!r})"
            lines.append(f"  {(prefix + field).upper()}: {err['msg']}{got}")
        raise ConfigError("\n".join(lines)) from None


def exit_on_config_error(exc: ConfigError) -> None:
    print(exc.message, file=sys.stderr)
    raise SystemExit(2)
