"""The reference tables of docs/operations.md, generated from the code.

    python deploy/operations_tables.py           # rewrite the generated sections in place
    python deploy/operations_tables.py --check   # exit 1 if they are stale (the tests run this)

Three tables are generated, each between ``<!-- BEGIN generated: NAME -->`` and
``<!-- END generated: NAME -->``: every environment variable of every service
with its default (from the pydantic Settings classes), the topics (from the
topic registry) and the Kafka ACLs per principal (from deploy/kafka/acls.yaml).
A person edits the prose around them, never the tables.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "operations.md"
ACLS = REPO / "deploy" / "kafka" / "acls.yaml"
SERVICES = ("intake", "tickets", "routing", "escalation", "notify")

# Fields whose Settings class gives no description (shared by every service).
FALLBACK_DESCRIPTIONS = {
    "http_host": "Address the HTTP server (API, /healthz, /readyz, /metrics) binds; 0.0.0.0 in a container.",
    "http_port": "Port of the HTTP server.",
    "log_level": "DEBUG, INFO, WARNING or ERROR.",
    "smtp_port": "Port of the SMTP server.",
    "smtp_password": "SMTP password (with NOTIFY_SMTP_USERNAME); from a Secret.",
}


def _md(text: str) -> str:
    """Text safe in a Markdown table cell (no column breaks, no tags)."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


# --- Kafka ACLs ------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Acl:
    principal: str
    resource: str  # "topic" or "group"
    name: str
    operation: str  # READ, WRITE, DESCRIBE, CREATE, DESCRIBE_CONFIGS, ALTER_CONFIGS


# The topics Job creates the topics and keeps their configs in line with the registry (runtime/topics_admin.py).
TOPIC_KEEPER_OPERATIONS = ("CREATE", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS")


def acl_bindings(path: Path = ACLS) -> list[Acl]:
    """Every ALLOW binding that deploy/kafka/acls.yaml asks for, one per (principal, resource, operation)."""
    spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))["principals"]
    acls: set[Acl] = set()
    for principal, grants in spec.items():
        for item in grants.get("consumes", []):
            acls |= {Acl(principal, "topic", item["topic"], op) for op in ("READ", "DESCRIBE")}
            acls.add(Acl(principal, "group", item["group"], "READ"))
        for topic in grants.get("produces", []):
            acls |= {Acl(principal, "topic", topic, op) for op in ("WRITE", "DESCRIBE")}
        for topic in grants.get("creates", []):
            acls |= {Acl(principal, "topic", topic, op) for op in TOPIC_KEEPER_OPERATIONS}
    return sorted(acls)


def render_acls() -> str:
    from contracts.topics import ALL_TOPICS

    every_topic = {t.name for t in ALL_TOPICS}
    spec = yaml.safe_load(ACLS.read_text(encoding="utf-8"))["principals"]
    rows = ["| principal | consumes (topic ← group) | produces | creates |", "|---|---|---|---|"]
    for principal, grants in spec.items():
        consumes = "<br>".join(f"`{c['topic']}` ← `{c['group']}`" for c in grants.get("consumes", []))
        produces = "<br>".join(f"`{t}`" for t in grants.get("produces", []))
        created = grants.get("creates", [])
        creates = f"all {len(created)} topics" if set(created) == every_topic else ", ".join(f"`{t}`" for t in created)
        rows.append(f"| `User:{principal}` | {consumes} | {produces} | {creates} |")
    commands = ["```sh", "# with kafka-acls.sh (any Kafka); --command-config holds the admin's SASL settings"]
    for principal, grants in spec.items():
        for item in grants.get("consumes", []):
            commands.append(
                f"kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config admin.properties --add "
                f"--allow-principal User:{principal} --consumer --topic {item['topic']} --group {item['group']}"
            )
        for topic in grants.get("produces", []):
            commands.append(
                f"kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config admin.properties --add "
                f"--allow-principal User:{principal} --operation Write --operation Describe --topic {topic}"
            )
        for topic in grants.get("creates", []):
            commands.append(
                f"kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config admin.properties --add "
                f"--allow-principal User:{principal} --operation Create --operation Describe "
                f"--operation DescribeConfigs --operation AlterConfigs --topic {topic}"
            )
    commands.append("```")
    return "\n".join(rows + [""] + commands)


# --- environment variables -------------------------------------------------------


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(built-in development value: set it in any deployment)"
    if isinstance(value, Path):
        try:
            return f"`{value.resolve().relative_to(REPO)}` (shipped)"
        except ValueError:
            return f"`{value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return "empty"
    return f"`{value}`"


def env_rows(settings: type[BaseSettings]) -> list[tuple[str, str, str]]:
    prefix = settings.model_config.get("env_prefix", "") or ""
    rows = []
    for name, field in settings.model_fields.items():
        description = _md(field.description or FALLBACK_DESCRIPTIONS.get(name, ""))
        rows.append((f"{prefix}{name}".upper(), _default(field.default), description))
    return rows


def settings_classes() -> dict[str, type[BaseSettings]]:
    from runtime.settings import CommonSettings

    from runtime.auth import AuthSettings

    classes: dict[str, type[BaseSettings]] = {
        "every service (no prefix)": CommonSettings,
        "people's tokens (tickets, routing, escalation)": AuthSettings,
    }
    for service in SERVICES:
        classes[service] = importlib.import_module(f"services.{service}.config").Settings
    return classes


def render_env() -> str:
    parts = []
    for title, cls in settings_classes().items():
        parts += [f"#### {title}", "", "| Variable | Default | Meaning |", "|---|---|---|"]
        parts += [f"| `{var}` | {default} | {meaning} |" for var, default, meaning in env_rows(cls)]
        parts.append("")
    return "\n".join(parts).rstrip()


# --- topics ---------------------------------------------------------------------


def render_topics() -> str:
    from contracts.topics import ALL_TOPICS

    rows = [
        "| topic | partitions | key | extra config | production: replication / min.insync.replicas |",
        "|---|---:|---|---|---|",
    ]
    for topic in ALL_TOPICS:
        config = ", ".join(f"`{k}={v}`" for k, v in topic.config.items()) or "—"
        rows.append(f"| `{topic.name}` | {topic.partitions} | {_md(topic.key)} | {config} | 3 / 2 |")
    return "\n".join(rows)


# --- the document ---------------------------------------------------------------

SECTIONS = {"env": render_env, "topics": render_topics, "acls": render_acls}


def regenerate(text: str) -> str:
    for name, render in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- BEGIN generated: {name} -->\n).*?(<!-- END generated: {name} -->)", re.DOTALL
        )
        if not pattern.search(text):
            raise SystemExit(f"{DOC}: no '<!-- BEGIN generated: {name} -->' ... '<!-- END generated: {name} -->' section")
        body = render()
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/operations.md is stale")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    current = DOC.read_text(encoding="utf-8")
    fresh = regenerate(current)
    if args.check:
        if fresh != current:
            print(f"{DOC.relative_to(REPO)} is stale: run python deploy/operations_tables.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
