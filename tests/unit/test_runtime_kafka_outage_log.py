"""How the log handler's filter and the outage tracker (runtime/logs.py) tell an outage from a blip.

The real outage, against a broker stopped and started again, is in
tests/integration/test_runtime_kafka_outage.py; these cases are the decisions in between.
"""

from __future__ import annotations

import logging

from runtime.logs import KafkaClientNoise, KafkaOutage
from runtime.metrics import KAFKA_OUTAGES, KAFKA_REACHABLE

REFUSED = "Unable connect to node with id 1: [Errno 111] Connect call failed ('127.0.0.1', 19092)"


def record(logger: str, message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(logger, level, __file__, 1, message, None, None)


def outages(service: str) -> float:
    return KAFKA_OUTAGES.labels(service)._value.get()


def test_the_clients_connection_errors_are_demoted_and_dropped_but_its_other_errors_are_kept() -> None:
    outage = KafkaOutage()
    noise = KafkaClientNoise(outage)
    assert noise.filter(record("aiokafka", REFUSED)) is False
    assert noise.filter(record("aiokafka.consumer.fetcher", "Failed fetch messages from 1: NodeNotReadyError: x")) is False
    assert noise.filter(record("aiokafka", "Unexpected error in coordinator routine: ValueError")) is True
    assert noise.filter(record("runtime.consumer", REFUSED)) is True  # our own lines are never touched
    assert outage.first_error == REFUSED


def test_an_outage_is_counted_once_however_many_errors_and_probes_it_takes() -> None:
    outage = KafkaOutage()
    outage.service = "outage-unit"
    noise = KafkaClientNoise(outage)
    before = outages("outage-unit")
    for _ in range(1000):
        noise.filter(record("aiokafka", REFUSED))
        outage.settle(False)
    assert outages("outage-unit") == before + 1
    assert KAFKA_REACHABLE.labels("outage-unit")._value.get() == 0
    outage.settle(True)
    assert KAFKA_REACHABLE.labels("outage-unit")._value.get() == 1 and outage.suspected_at is None


def test_an_error_the_probe_finds_no_outage_behind_is_a_blip_and_not_counted() -> None:
    outage = KafkaOutage()
    outage.service = "blip-unit"
    KafkaClientNoise(outage).filter(record("aiokafka", "Connection at 127.0.0.1:19092 closed"))
    outage.settle(True)
    assert outages("blip-unit") == 0 and not outage.down and outage.suspected_at is None
