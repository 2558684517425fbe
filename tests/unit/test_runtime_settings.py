"""Configuration errors name the environment variable and what is wrong with it."""

from __future__ import annotations

import pytest
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from runtime.settings import CommonSettings, ConfigError, HttpSettings, load


class _TicketsLike(HttpSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore")
    database_url: str = Field(default="sqlite+aiosqlite:///var/demo.db")


def test_a_bad_port_is_reported_with_the_prefixed_variable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_HTTP_PORT", "eighty")
    with pytest.raises(ConfigError) as caught:
        load(_TicketsLike)
    assert "DEMO_HTTP_PORT" in caught.value.message
    assert "'eighty'" in caught.value.message
    assert caught.value.code == 2


def test_a_bad_shared_setting_names_the_unprefixed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "has spaces!")
    with pytest.raises(ConfigError, match="KAFKA_TOPIC_PREFIX"):
        load(CommonSettings)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_HTTP_PORT", "9009")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    assert load(_TicketsLike).http_port == 9009
    assert load(CommonSettings).kafka_bootstrap_servers == "k1:9092,k2:9092"
