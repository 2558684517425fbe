"""deploy/kafka/acls.yaml grants each service exactly what its code uses.

Read from the source: ``service.subscribe(TOPIC, ..., group=...)`` is a topic it
consumes as a group (default group ``helpdesk-<service>``), and
``Outgoing(TOPIC, ...)`` / ``publisher.publish(TOPIC, ...)`` a topic it writes.
Every consumer may also write the dead-letter topic (runtime/consumer.py does).
A subscription to a topic the service names by a setting (intake's
``INTAKE_DIRECTORY_TOPIC``) is to that setting's default, which must be a
registry topic.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

import contracts.topics as registry
from tests.deploy.repo import DEPLOY, REPO, SERVICES, service_env_vars

TOPIC_CONSTANTS = {name: value.name for name, value in vars(registry).items() if isinstance(value, registry.Topic)}
PRINCIPALS = yaml.safe_load((DEPLOY / "kafka" / "acls.yaml").read_text())["principals"]


def _call_name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def configured_topic(service: str) -> str:
    """The registry topic a service names by a setting (``<SERVICE>_..._TOPIC``); there must be exactly one."""
    registry_names = set(TOPIC_CONSTANTS.values())
    named = [v for k, v in service_env_vars(service).items() if k.endswith("_TOPIC") and v in registry_names]
    assert len(named) == 1, f"services/{service} subscribes to a topic by a variable; its settings name {named}"
    return named[0]


def uses_in_code(service: str) -> tuple[set[tuple[str, str]], set[str]]:
    """((topic, group) consumed, topics produced) as the service's source says."""
    consumes, produces = set(), set()
    for path in Path(REPO / "services" / service).rglob("*.py"):
        module = ast.parse(path.read_text(), str(path))
        constants = {  # NAME = "text" at module level: a group may be named by one
            target.id: node.value.value
            for node in module.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(module):
            if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Name):
                continue
            name = _call_name(node)
            topic = TOPIC_CONSTANTS.get(node.args[0].id)
            if topic is None and name == "subscribe":
                topic = configured_topic(service)
            if topic is None:
                continue
            if name == "subscribe":
                group = next(
                    (_text(k.value, constants) for k in node.keywords if k.arg == "group"), f"helpdesk-{service}"
                )
                consumes.add((topic, group))
            elif name in {"Outgoing", "publish", "publish_raw", "publish_encoded"}:
                produces.add(topic)
    return consumes, produces


def _text(value: ast.expr, constants: dict[str, object]) -> object:
    """A keyword's value: a string as written, or the module constant it names."""
    if isinstance(value, ast.Name):
        assert value.id in constants, f"group={value.id}: not a string constant of the module"
        return constants[value.id]
    assert isinstance(value, ast.Constant), f"group= must be a string or a module constant: {ast.dump(value)}"
    return value.value


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_principal_is_granted_exactly_what_its_code_uses(service: str) -> None:
    consumes, produces = uses_in_code(service)
    assert consumes, f"found no subscription in services/{service}"
    grants = PRINCIPALS[f"helpdesk-{service}"]
    assert {(c["topic"], c["group"]) for c in grants["consumes"]} == consumes
    assert set(grants["produces"]) == produces | {registry.DEAD_LETTERS.name}


def test_the_topics_admin_may_create_every_topic_and_nobody_else_may() -> None:
    assert set(PRINCIPALS["helpdesk-topics-admin"]["creates"]) == {t.name for t in registry.ALL_TOPICS}
    assert [p for p, grants in PRINCIPALS.items() if "creates" in grants] == ["helpdesk-topics-admin"]
    assert set(PRINCIPALS) == {f"helpdesk-{s}" for s in SERVICES} | {"helpdesk-topics-admin"}
