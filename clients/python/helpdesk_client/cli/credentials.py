"""Where ``helpdesk login`` keeps the server URL and token between runs.

In ``$XDG_CONFIG_HOME/helpdesk/credentials`` (``~/.config/helpdesk/credentials``
by default), a JSON file only its owner may read (0600, in a 0700 directory),
written atomically so a crash never leaves half a token behind.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str | None = None
    api_key: str | None = None


def path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "helpdesk" / "credentials"


def load() -> Credentials | None:
    try:
        raw = json.loads(path().read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # unreadable: as if never logged in; login writes it anew
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
        return None
    return Credentials(url=raw["url"], token=raw.get("token"), api_key=raw.get("api_key"))


def save(credentials: Credentials) -> Path:
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(target.parent, 0o700)
    body = {k: v for k, v in vars(credentials).items() if v is not None}
    temporary = target.with_suffix(".tmp")
    # Created 0600 from the start: the token is never readable by others, not even for a moment.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(body, out)
    os.replace(temporary, target)
    return target


def forget() -> bool:
    try:
        path().unlink()
        return True
    except FileNotFoundError:
        return False
