"""Where the deployment files are, and the generator of docs/operations.md's tables."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SERVICES = ("intake", "tickets", "routing", "escalation", "notify")
DEFAULT_PORTS = {"intake": 8001, "tickets": 8002, "routing": 8003, "escalation": 8004, "notify": 8005}


@cache
def operations_tables() -> ModuleType:
    """deploy/operations_tables.py (a script, not a package) as a module."""
    spec = importlib.util.spec_from_file_location("operations_tables", DEPLOY / "operations_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def env_vars_of(settings: type) -> dict[str, object]:
    """Environment variable name -> default, for a pydantic Settings class."""
    prefix = settings.model_config.get("env_prefix", "") or ""
    return {f"{prefix}{name}".upper(): field.default for name, field in settings.model_fields.items()}


@cache
def service_env_vars(service: str) -> dict[str, object]:
    """Every variable ``python -m services.<service>`` reads: its own and the shared ones."""
    config = importlib.import_module(f"services.{service}.config")
    from runtime.auth import AuthSettings
    from runtime.settings import CommonSettings

    people = env_vars_of(AuthSettings) if service in PEOPLES_SERVICES else {}
    return {**env_vars_of(CommonSettings), **people, **env_vars_of(config.Settings)}


# The services that serve people (and so read AUTH_*: how people's tokens are checked).
PEOPLES_SERVICES = ("tickets", "routing", "escalation")


def prefix_of(service: str) -> str:
    return f"{service.upper()}_"
