"""Telephone calls from a CTI system (pure): its call events, and the incidents they make.

The call's incident is reported when an agent answers (by then the IVR has
said what the call is about) or, for a call nobody answered, when it ends.
The end of an answered call is reported as a reply on the call's ticket.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from contracts.incidents import Channel, ContactDetails, IncidentReportedData, Level
from services.intake.adapters.calls import Call


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    call_id: str = Field(min_length=1, max_length=150)
    at: AwareDatetime | None = Field(default=None, description="When it happened; else when intake received it.")


class CallStarted(_Event):
    event: Literal["call.started"]
    caller: str = Field(min_length=1, max_length=64, description="The caller's number (CLI), any format.")
    dialled: str | None = Field(default=None, max_length=64)


class IvrChoices(_Event):
    event: Literal["call.ivr"]
    components: list[str] = Field(default_factory=list, max_length=20)
    urgency: Level | None = None
    impact: Level | None = None


class CallAnswered(_Event):
    event: Literal["call.answered"]
    agent_id: str = Field(min_length=1, max_length=200)


class CallEnded(_Event):
    event: Literal["call.ended"]
    duration_s: int = Field(ge=0, le=7 * 24 * 3600)
    summary: str | None = Field(
        default=None, max_length=10_000, description="The agent's wrap-up note, if the CTI has one."
    )


CallEvent = Annotated[CallStarted | IvrChoices | CallAnswered | CallEnded, Field(discriminator="event")]
_EVENT: TypeAdapter[CallStarted | IvrChoices | CallAnswered | CallEnded] = TypeAdapter(CallEvent)


class MalformedCallEvent(ValueError):
    """Not a call event; the text says which field is wrong."""


def parse_call_event(body: bytes) -> CallStarted | IvrChoices | CallAnswered | CallEnded:
    try:
        return _EVENT.validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise MalformedCallEvent(f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}") from None


def opening_incident(call: Call, reported_at: datetime, abandoned_after_s: int | None = None) -> IncidentReportedData:
    if abandoned_after_s is not None:
        description = (
            f"Call from {call.caller} not answered; the caller hung up after {_duration(abandoned_after_s)}. Call back."
        )
    else:
        description = f"Call from {call.caller}, answered by {call.agent_id}."
    topics = f" ({', '.join(call.components)})" if call.components else ""
    return IncidentReportedData(
        channel=Channel.PHONE,
        channel_message_id=call.call_id,
        received_at=call.started_at,
        contact=ContactDetails(phone=call.caller),
        subject=("Missed call" if abandoned_after_s is not None else "Phone call") + topics,
        description=description,
        components=list(call.components),
        urgency=call.urgency,  # type: ignore[arg-type]
        impact=call.impact,  # type: ignore[arg-type]
    )


def call_ended_reply(call: Call, ended: CallEnded, number: str, received_at: datetime) -> IncidentReportedData:
    text = f"Call ended after {_duration(ended.duration_s)} (agent {call.agent_id})."
    return IncidentReportedData(
        channel=Channel.PHONE,
        channel_message_id=f"{call.call_id}/ended",
        received_at=ended.at or received_at,
        contact=ContactDetails(phone=call.caller),
        subject="Call ended",
        description=text + (f"\n\n{ended.summary}" if ended.summary else ""),
        reply_to_number=number,
    )


def _duration(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
