"""Structured JSON logs, one line an event, with correlation id and ticket number.

Library loggers (uvicorn, aiokafka, faststream, sqlalchemy) are routed through
the same renderer so an operator's log pipeline sees only JSON.

A Kafka outage is logged once: "kafka unreachable" when it begins and "kafka
reachable again" (with its duration) when it ends. The client's own
connection errors, which it repeats for every reconnect, metadata refresh,
fetch and heartbeat (thousands of lines a second), go to debug.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from runtime.metrics import KAFKA_CONNECTION_ERRORS, KAFKA_OUTAGES, KAFKA_REACHABLE

_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    kafka_outage.service = service
    handler.addFilter(KafkaClientNoise(kafka_outage))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-message chatter from libraries would drown the service's own lines.
    for noisy in ("aiokafka", "faststream", "uvicorn.access", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # These libraries install their own console handlers; their lines go through ours instead.
    for name in ("uvicorn", "uvicorn.error", "faststream"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind values (correlation_id, ticket_number, ...) to every log line inside the block."""
    clean = {k: v for k, v in values.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**clean):
        yield


# --- a Kafka outage, logged once ----------------------------------------------------------------

# What the Kafka client says at WARNING and above when it cannot reach the broker.
CONNECTION_TROUBLE = re.compile(
    r"Unable connect to node|Unable to update metadata|Connect call failed|Connection at \S+ closed|Connection refused"
    r"|NodeNotReadyError|KafkaConnectionError|RequestTimedOutError|GroupCoordinatorNotAvailable"
    r"|Group Coordinator Request failed|Heartbeat (?:send request failed|session expired|failed for group)"
    r"|Error sending HeartbeatRequest|Marking the coordinator dead"
)
CLIENT_LOGGERS = ("aiokafka", "faststream")
PROBE_EVERY_S = 1.0


class KafkaOutage:
    """Whether this service reaches Kafka.

    The client's first connection error makes an outage suspected; a probe (the readiness check)
    confirms it, and the outage is logged and counted once, or dismisses it as a blip, which is
    not logged at all. The probe that reaches Kafka again ends it, with its duration counted from
    the first error.
    """

    def __init__(self) -> None:
        self.service = ""
        self.suspected_at: float | None = None  # monotonic time of the first error since Kafka was last reached
        self.first_error = ""
        self.down = False

    def suspect(self, error: str) -> None:
        if self.suspected_at is None:
            self.suspected_at, self.first_error = time.monotonic(), error

    async def watch(self, reachable: Callable[[], Awaitable[bool]]) -> None:
        """Probe Kafka each PROBE_EVERY_S while an outage is suspected; runs as long as the service."""
        if self.service:
            KAFKA_REACHABLE.labels(self.service).set(1)  # it has started: Kafka was reached
        while True:
            await asyncio.sleep(PROBE_EVERY_S)
            if self.suspected_at is not None:
                self.settle(await reachable())

    def settle(self, reached: bool) -> None:
        if self.suspected_at is None:
            return
        if reached:
            if self.down:
                _outage_log.info("kafka reachable again", outage_s=round(time.monotonic() - self.suspected_at, 1))
                KAFKA_REACHABLE.labels(self.service).set(1)
            self.suspected_at, self.down = None, False
        elif not self.down:
            self.down = True
            KAFKA_OUTAGES.labels(self.service).inc()
            KAFKA_REACHABLE.labels(self.service).set(0)
            _outage_log.warning("kafka unreachable", degraded=True, error=self.first_error)


class KafkaClientNoise(logging.Filter):
    """On the log handler: the Kafka client's connection errors go to debug and tell the outage tracker."""

    def __init__(self, outage: KafkaOutage) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(CLIENT_LOGGERS):
            return True
        text = _text_of(record)
        if not CONNECTION_TROUBLE.search(text):
            return True
        self.outage.suspect(text)
        KAFKA_CONNECTION_ERRORS.labels(self.outage.service).inc()
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _text_of(record: logging.LogRecord) -> str:
    try:
        text = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is not connection trouble
        return ""
    if record.exc_info and record.exc_info[1] is not None:
        text += f" {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
    return text


kafka_outage = KafkaOutage()  # one per process: each service runs as its own process
_outage_log = get_logger("runtime.kafka")
