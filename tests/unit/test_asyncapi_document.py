"""The AsyncAPI document tells an integrator what is really on the topics, in the shape its version defines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from contracts import docs
from contracts.envelope import MESSAGE_HEADERS
from contracts.topics import ALL_TOPICS, DEAD_LETTERS, DIRECTORY_CUSTOMERS, INCIDENTS_REPORTED, Topic

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI = json.loads(docs.ASYNCAPI_PATH.read_text())
SPEC_SCHEMA = ROOT / "tests" / "support" / "asyncapi" / "3.0.0.schema.json"


def _message(topic_name: str) -> dict:
    return ASYNCAPI["components"]["messages"][f"{topic_name}:Message"]


def test_the_document_is_valid_asyncapi_of_the_version_it_declares() -> None:
    assert ASYNCAPI["asyncapi"] == "3.0.0", "the vendored schema is 3.0.0's; fetch the one of the new version"
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in jsonschema.Draft7Validator(json.loads(SPEC_SCHEMA.read_text())).iter_errors(ASYNCAPI)
    ]
    assert errors == []


def test_every_message_defines_its_kafka_headers_as_an_object_schema_with_the_suites_header_names() -> None:
    for topic in ALL_TOPICS:
        headers = _message(topic.name)["headers"]
        assert headers["type"] == "object", topic.name
        if topic is not DEAD_LETTERS:
            assert set(headers["properties"]) == set(MESSAGE_HEADERS), topic.name
            assert headers["properties"]["message-type"]["enum"], topic.name


def test_the_correlation_id_is_located_in_the_header_the_suite_names_correlation_id_with_a_hyphen() -> None:
    for topic in ALL_TOPICS:
        message = _message(topic.name)
        header = message["correlationId"]["location"].removeprefix("$message.header#/")
        assert header == "correlation-id", topic.name
        if topic is not DEAD_LETTERS:
            assert header in message["headers"]["properties"]


def test_the_description_is_written_for_integrators_not_the_generators_docstring() -> None:
    description = ASYNCAPI["info"]["description"]
    assert description != docs.__doc__.splitlines()[0]
    for needed in ("deduplicate on `event_id`", "acks=all", "helpdesk.deadletter.v1", "KAFKA_TOPIC_PREFIX"):
        assert needed in description, needed
    for header in MESSAGE_HEADERS:
        assert f"`{header}`" in description, header


def test_the_servers_are_the_local_runs_broker_and_a_deployments_variable_host() -> None:
    infra = (ROOT / "scripts" / "infra").read_text()
    [local_port] = re.findall(r'KAFKA_PORT="\$\{HELPDESK_KAFKA_PORT:-(\d+)\}"', infra)
    assert ASYNCAPI["servers"]["local"]["host"] == f"127.0.0.1:{local_port}"

    deployment = ASYNCAPI["servers"]["deployment"]
    [variable] = re.findall(r"^\{(\w+)\}$", deployment["host"])
    kustomization = yaml.safe_load((ROOT / "deploy" / "base" / "kustomization.yaml").read_text())
    env = [line for generator in kustomization["configMapGenerator"] for line in generator.get("literals", [])]
    [bootstrap] = [line.split("=", 1)[1] for line in env if line.startswith("KAFKA_BOOTSTRAP_SERVERS=")]
    assert deployment["variables"][variable]["default"] == bootstrap
    for topic in ALL_TOPICS:
        assert {s["$ref"] for s in ASYNCAPI["channels"][topic.name]["servers"]} == {
            "#/servers/local", "#/servers/deployment"
        }


def test_the_operations_say_which_service_sends_and_receives_each_topic_as_the_acls_grant() -> None:
    acls = yaml.safe_load(docs.ACLS_PATH.read_text())["principals"]
    for principal, grants in acls.items():
        service = principal.removeprefix("helpdesk-")
        for topic in grants.get("produces", []):
            assert service in ASYNCAPI["operations"][f"{topic}.send"]["summary"], (service, topic)
        for consumed in grants.get("consumes", []):
            assert service in ASYNCAPI["operations"][f"{consumed['topic']}.receive"]["summary"], (service, consumed)


def test_every_channel_binding_carries_partitions_and_the_topic_configuration_of_the_registry() -> None:
    for topic in ALL_TOPICS:
        binding = ASYNCAPI["channels"][topic.name]["bindings"]["kafka"]
        assert binding["partitions"] == topic.partitions
        configured = binding.get("topicConfiguration", {})
        assert {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in configured.items()} == topic.config


@pytest.mark.parametrize(
    ("guide", "topic"),
    [("docs/intake.md", INCIDENTS_REPORTED), ("docs/intake/directory.md", DIRECTORY_CUSTOMERS)],
)
def test_the_intake_guides_give_integrators_the_headers_the_asyncapi_document_defines(guide: str, topic: Topic) -> None:
    text = (ROOT / guide).read_text()
    [bullet] = re.findall(r"\*\*Headers[^\n]*\n(?:  [^\n]+\n)*", text)
    named = dict(re.findall(r"`([a-z_-]+): ([^`]+)`", bullet))
    headers = _message(topic.name)["headers"]["properties"]
    assert named and set(named) <= set(headers)
    for name, value in named.items():
        assert value in headers[name].get("enum", [value]) and value == headers[name].get("const", value), name
