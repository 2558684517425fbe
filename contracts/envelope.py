"""The envelope every message travels in.

The envelope carries what every consumer needs without knowing the message:
its identity (for idempotency), its type and schema version (for decoding),
the ticket it concerns (for keying and logging), and the correlation and
causation ids that let an operator follow one incident across services.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Data = TypeVar("Data", bound=BaseModel)


# The Kafka headers every producer of the suite puts on a message (``runtime.kafka.headers_for``,
# and the ticket relay for the events it stores): the envelope's identity, readable without
# decoding the value. Their names and meanings as the AsyncAPI document gives them
# (``contracts/docs.py``); the suite's consumers read none of them.
MESSAGE_HEADERS: dict[str, str] = {
    "content-type": "Always application/json: the value is the JSON envelope, UTF-8.",
    "message-type": "The envelope's type, e.g. ticket.opened.",
    "schema-version": "The envelope's schema_version, in decimal.",
    "correlation-id": "The envelope's correlation_id: shared by every message one contact caused.",
    "causation-id": "The envelope's causation_id (the event_id of the message that caused this one); absent when none.",
    "correlation_id": (
        "Added by the suite's Kafka library (FastStream) from the same value as correlation-id; "
        "read correlation-id."
    ),
}
OPTIONAL_HEADERS = frozenset({"causation-id"})


class Payload(BaseModel):
    """Base of every message body: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Envelope(BaseModel, Generic[Data]):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID = Field(description="Unique id of this message; consumers deduplicate on it.")
    type: str = Field(description="Message type, e.g. 'ticket.opened'.")
    schema_version: int = Field(ge=1, description="Version of the data schema for this type.")
    ticket_id: uuid.UUID | None = Field(
        default=None, description="The ticket this message concerns; absent before a ticket exists."
    )
    occurred_at: AwareDatetime = Field(description="When the fact happened (UTC).")
    correlation_id: str = Field(
        min_length=1, max_length=200, description="Shared by every message caused by one original contact."
    )
    causation_id: str | None = Field(
        default=None, max_length=200, description="event_id of the message that caused this one."
    )
    data: Data


def new_envelope(
    model: type[Envelope[Any]],
    data: BaseModel,
    *,
    ticket_id: uuid.UUID | None = None,
    correlation_id: str | None = None,
    causation: Envelope[Any] | None = None,
    event_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> Envelope[Any]:
    """Build a message of ``model`` with its type and version filled in.

    When ``causation`` is given, the correlation id is inherited from it and its
    event id becomes the causation id, so one contact can be traced end to end.
    """
    if causation is not None:
        correlation_id = correlation_id or causation.correlation_id
    event_id = event_id or uuid.uuid4()
    return model(
        event_id=event_id,
        type=message_type(model),
        schema_version=model.model_fields["schema_version"].default,
        ticket_id=ticket_id,
        occurred_at=occurred_at or datetime.now(UTC),
        correlation_id=correlation_id or str(event_id),
        causation_id=str(causation.event_id) if causation is not None else None,
        data=data,
    )


def message_type(model: type[Envelope[Any]]) -> str:
    """The ``type`` string a message model carries (its Literal default)."""
    return model.model_fields["type"].default
