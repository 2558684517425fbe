"""Reading a YAML (or JSON) file a person edits, so that every error names the file and line.

The file is composed into YAML nodes (which remember where they start) and
constructed from those same nodes; a validation error's location (a path of
keys and list indexes, as pydantic reports it) is walked back down the node
tree to the line it came from. JSON is YAML, so one reader serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


class ConfigFileError(ValueError):
    """A configuration file is unreadable or invalid; the message lists every problem as ``file:line: ...``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class MarkedDocument:
    path: Path
    data: Any
    root: yaml.Node | None

    def line_of(self, location: tuple[int | str, ...]) -> int:
        """The 1-based line naming ``location``: its key (or list item); for a missing key, its parent's."""
        node = self.root
        if node is None:
            return 1
        named_at = node.start_mark
        for part in location:
            key, child = _child(node, part)
            if child is None:
                break
            # "matrix:" names a block mapping that starts on the next line: point at the key.
            named_at = (key or child).start_mark
            node = child
        return named_at.line + 1

    def problem(self, location: tuple[int | str, ...], message: str) -> str:
        return f"{self.path}:{self.line_of(location)}: {message}"

    def validation_problems(self, exc: ValidationError, base: tuple[int | str, ...] = ()) -> list[str]:
        """One ``file:line: where: what`` line per pydantic error."""
        problems = []
        for err in exc.errors(include_url=False):
            location = base + tuple(err["loc"])
            problems.append(self.problem(location, f"{dotted(location)}: {err['msg'].removeprefix('Value error, ')}"))
        return problems


def read(path: Path) -> MarkedDocument:
    """Parse ``path``; raise :class:`ConfigFileError` naming the line of a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigFileError([f"{path}:{line}: not valid YAML/JSON: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigFileError([f"{path}:1: not valid YAML/JSON: {exc}"]) from None
    finally:
        loader.dispose()
    return MarkedDocument(path, data, root)


def dotted(location: tuple[int | str, ...]) -> str:
    """``('customers', 2, 'phone')`` -> ``customers[2].phone``."""
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _child(node: yaml.Node, part: int | str) -> tuple[yaml.Node | None, yaml.Node | None]:
    """(key node, value node) of ``part`` under ``node``; (None, None) if there is none."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key, value
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return None, node.value[part]
    return None, None
