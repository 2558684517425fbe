"""Decoding: from the bytes on a topic to the right message model.

Decoding is two-step so that the error says what is wrong: first the envelope
(is this one of our messages at all, which type and version), then the data
against that type's model.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from contracts.commands import TICKET_COMMANDS
from contracts.envelope import Envelope, message_type
from contracts.incidents import DIRECTORY_MESSAGES, IncidentIdentified, IncidentReported
from contracts.notifications import NOTIFICATIONS
from contracts.sla import SLA_MESSAGES
from contracts.tickets import TICKET_EVENTS

ALL_MESSAGES: tuple[type[Envelope[Any]], ...] = (
    IncidentReported,
    IncidentIdentified,
    *TICKET_EVENTS,
    *TICKET_COMMANDS,
    *NOTIFICATIONS,
    *SLA_MESSAGES,
    *DIRECTORY_MESSAGES,
)

MESSAGE_TYPES: dict[tuple[str, int], type[Envelope[Any]]] = {
    (message_type(m), m.model_fields["schema_version"].default): m for m in ALL_MESSAGES
}


class InvalidMessage(ValueError):
    """The bytes are not a message this consumer accepts; the text says why."""


class _Head(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    schema_version: int


def parse_message(raw: bytes | str, accepted: tuple[type[Envelope[Any]], ...] | None = None) -> Envelope[Any]:
    """Decode ``raw`` into its message model, or raise :class:`InvalidMessage`.

    ``accepted`` limits the types a consumer takes (a ticket event on the
    commands topic is an error, not something to ignore).
    """
    fast = _one_pass(accepted) if accepted is not None else None
    if fast is not None:
        try:
            return fast.validate_json(raw)
        except ValidationError:
            pass  # decode again, step by step, to say precisely what is wrong
    try:
        head = _Head.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidMessage(f"not a helpdesk message envelope: {_first_error(exc)}") from None
    model = MESSAGE_TYPES.get((head.type, head.schema_version))
    if model is None:
        raise InvalidMessage(f"unknown message type {head.type!r} version {head.schema_version}")
    if accepted is not None and model not in accepted:
        names = ", ".join(sorted(message_type(m) for m in accepted))
        raise InvalidMessage(f"message type {head.type!r} is not accepted here (expected one of: {names})")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidMessage(f"invalid {head.type} v{head.schema_version}: {_first_error(exc)}") from None


@lru_cache(maxsize=64)
def _one_pass(accepted: tuple[type[Envelope[Any]], ...]) -> TypeAdapter[Any] | None:
    """One validation pass over the accepted types, when their ``type`` alone tells them apart."""
    types = [message_type(m) for m in accepted]
    if len(set(types)) != len(types):
        return None  # two versions of one type: the two-step path picks by schema_version
    if len(accepted) == 1:
        return TypeAdapter(accepted[0])
    return TypeAdapter(Annotated[Union[accepted], Field(discriminator="type")])  # noqa: UP007


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    parts = []
    for err in errors[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more
