"""Reading a ``text/event-stream`` (Server-Sent Events) line by line.

Follows the HTML specification's parsing rules: ``field: value`` lines build
an event, a blank line dispatches it, lines starting with ``:`` are comments
(the server's keep-alives), ``id`` is remembered across events (it is what a
reconnection resumes after) and ``retry`` sets the reconnection delay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from helpdesk_client.models import StreamEvent


@dataclass
class EventStreamParser:
    last_event_id: str | None = None
    retry_ms: int | None = None
    _type: str = ""
    _data: list[str] = field(default_factory=list)
    # The id of the event being read becomes the last id only once the event is complete:
    # a connection cut mid-event resumes after the previous one, so none is lost.
    _id: str | None = None

    def __post_init__(self) -> None:
        self._id = self.last_event_id

    def feed(self, line: str) -> StreamEvent | None:
        """Take one line (without its line ending); return an event when the line completes one."""
        if line == "":
            self.last_event_id = self._id
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> StreamEvent | None:
        data, kind = "\n".join(self._data), self._type or "message"
        self._data, self._type = [], ""
        if not data:
            return None
        try:
            payload = json.loads(data)
        except ValueError:
            payload = {"text": data}
        if not isinstance(payload, dict):
            payload = {"value": payload}
        return StreamEvent(id=self.last_event_id, type=kind, data=payload)
