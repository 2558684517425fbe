"""Messages that cross a Kafka topic, and the registry of those topics.

Every service depends on this package and on nothing of another service.
A message is an :class:`~contracts.envelope.Envelope` whose ``type`` and
``schema_version`` select the pydantic model of its ``data``.
"""

from contracts.envelope import Envelope, new_envelope
from contracts.registry import MESSAGE_TYPES, parse_message

__all__ = ["Envelope", "new_envelope", "MESSAGE_TYPES", "parse_message"]
