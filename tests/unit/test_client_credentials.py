"""`helpdesk login` keeps the token where only its owner can read it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from helpdesk_client.cli import credentials


def test_credentials_are_written_0600_in_a_0700_directory_under_xdg_config_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    saved = credentials.save(credentials.Credentials(url="http://desk", token="secret"))
    assert saved == tmp_path / "helpdesk" / "credentials"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    assert credentials.load() == credentials.Credentials(url="http://desk", token="secret")
    assert credentials.forget() and credentials.load() is None and not credentials.forget()


def test_an_unreadable_file_counts_as_not_logged_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "helpdesk").mkdir()
    (tmp_path / "helpdesk" / "credentials").write_text("{not json")
    assert credentials.load() is None
