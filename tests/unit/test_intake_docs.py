"""What docs/intake.md shows integrators is a message intake accepts, and a directory it loads."""

from __future__ import annotations

import re
from pathlib import Path

from contracts.incidents import IncidentReported
from contracts.registry import parse_message
from services.intake.adapters.directory_file import load_directory

DOC = (Path(__file__).resolve().parents[2] / "docs" / "intake.md").read_text(encoding="utf-8")


def block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)
    [found] = [b for b in blocks if containing in b]
    return found


def test_the_documented_envelope_is_a_valid_incident_reported() -> None:
    message = parse_message(block("json", '"type": "incident.reported"'), (IncidentReported,))
    assert message.data.partition_key == "email:<CAF3x9@mail.example.com>"
    assert "email:<CAF3x9@mail.example.com>" in DOC, "the documented key matches the example"


def test_the_documented_directory_entry_loads(tmp_path: Path) -> None:
    path = tmp_path / "directory.yaml"
    path.write_text(block("yaml", "customers:"), encoding="utf-8")
    directory = load_directory(path, "GB")
    customer = directory.find("phone", "+442079460018")
    assert customer is not None and customer.vip
