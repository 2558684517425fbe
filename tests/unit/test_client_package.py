"""The client package stands alone: its own distribution, talking to the desk only over HTTP."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import helpdesk_client

PACKAGE = Path(helpdesk_client.__file__).parent
DISTRIBUTION = PACKAGE.parent / "pyproject.toml"
THIRD_PARTY = {"httpx", "pydantic", "typer", "rich", "click"}  # click comes with typer


def imported_top_level_names() -> set[str]:
    names: set[str] = set()
    for source in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_the_client_imports_no_service_runtime_or_contract_code() -> None:
    imported = imported_top_level_names()
    assert imported & {"services", "runtime", "contracts"} == set()
    others = imported - THIRD_PARTY - set(sys.stdlib_module_names) - {"helpdesk_client"}
    assert others == set(), f"the client imports {sorted(others)}, which its distribution does not declare"


def test_the_distribution_declares_what_it_imports_and_the_helpdesk_command() -> None:
    project = tomllib.loads(DISTRIBUTION.read_text())["project"]
    assert project["name"] == "helpdesk-client"
    assert set(project["dependencies"]) >= {"httpx", "typer", "rich"} and any(
        d.startswith("pydantic") for d in project["dependencies"]
    )
    assert project["scripts"]["helpdesk"] == "helpdesk_client.cli:main"
