"""The client's models say what the ticket service's OpenAPI document says: same fields, same types.

Checked against the checked-in document (docs/tickets-openapi.json, when it
exists) and against the one the running service serves. A field the server
adds shows up here first, so the client learns it before agents need it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpdesk_client import models
from pydantic import BaseModel

from tests.support.ticket_service_http import TicketService

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "docs" / "tickets-openapi.json"

# The server's response schemas and the client's models for them.
RESPONSE_MODELS: dict[str, type[BaseModel]] = {
    "TicketView": models.TicketView,
    "TicketDetail": models.TicketDetail,
    "TicketList": models.TicketList,
    "HistoryEntry": models.HistoryEntry,
    "QueueSummary": models.QueueSummary,
    "QueueList": models.QueueList,
    "TicketDeadlines": models.TicketDeadlines,
    "Deadline": models.Deadline,
    "LinkView": models.TicketLink,
    "TicketRefView": models.MergedInto,
    "AttachmentView": models.Attachment,
}
# Nested schemas the server names differently from the client.
SCHEMA_NAMES = {"LinkView": "TicketLink", "TicketRefView": "MergedInto", "AttachmentView": "Attachment"}


def kind(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """A schema reduced to what a client relies on: its JSON type(s), format, item type, and what it refers to.

    An enumeration of strings is a string to the client (it accepts values it does not know yet).
    """
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = defs.get(name, {})
        if "enum" in target or target.get("type") == "string":
            return kind(target, defs)
        return f"ref:{SCHEMA_NAMES.get(name, name)}"
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return "|".join(sorted({kind(s, defs) for s in schema[union]}))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return kind(schema["allOf"][0], defs)
    if "enum" in schema or "const" in schema:
        return "string"
    json_type = schema.get("type", "any")
    if json_type == "array":
        return f"array[{kind(schema.get('items', {}), defs)}]"
    if json_type == "object":
        return "object"
    fmt = schema.get("format")
    return f"{json_type}:{fmt}" if fmt in ("uuid", "date-time") else str(json_type)


def fields(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, str]:
    return {name: kind(prop, defs) for name, prop in schema.get("properties", {}).items()}


def client_fields(model: type[BaseModel]) -> dict[str, str]:
    schema = model.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
    return fields(schema, schema.get("$defs", {}))


def documents(service: TicketService) -> dict[str, dict[str, Any]]:
    found = {"served": httpx.get(f"{service.url}/openapi.json", timeout=10).raise_for_status().json()}
    if CHECKED_IN.exists():
        found["checked in"] = json.loads(CHECKED_IN.read_text())
    return found


@pytest.mark.parametrize("name", sorted(RESPONSE_MODELS))
def test_each_model_has_the_fields_and_types_of_the_servers_schema(
    ticket_service: TicketService,
    name: str,
) -> None:
    for where, document in documents(ticket_service).items():
        schemas = document["components"]["schemas"]
        assert name in schemas, f"the {where} OpenAPI document has no schema {name}"
        server = fields(schemas[name], schemas)
        client = client_fields(RESPONSE_MODELS[name])
        assert client == server, f"{name} differs from the {where} document"


def test_every_response_schema_of_the_api_has_a_client_model(
    ticket_service: TicketService,
) -> None:
    for where, document in documents(ticket_service).items():
        answered = set()
        for path, operations in document["paths"].items():
            if not path.startswith("/v1/"):
                continue
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    if not status.startswith("2"):
                        continue  # errors are problem+json (models.Problem), whatever FastAPI's default says
                    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                    if "$ref" in schema:
                        answered.add(schema["$ref"].rsplit("/", 1)[-1])
        assert answered <= set(RESPONSE_MODELS), f"{where}: no client model for {answered - set(RESPONSE_MODELS)}"


def test_models_ignore_fields_a_newer_server_adds() -> None:
    queue = models.QueueSummary.model_validate(
        {
            "queue": "network",
            "depth": 1,
            "oldest_opened_at": None,
            "oldest_age_s": None,
            "colour": "red",
        }
    )
    assert queue.queue == "network" and not hasattr(queue, "colour")
