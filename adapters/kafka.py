"""How much of a Kafka record is left for the value: one rule for ingest, the processor and dead letters."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

RECORD_OVERHEAD = 128  # more than a record's framing: below it, no exact size estimate is needed


def value_room(producer: AIOKafkaProducer, key: bytes | None = None) -> int:
    """The most bytes of value that ``producer`` certainly sends in one record with ``key`` (without
    a key: the most bytes of key and value together)."""
    return int(producer._max_request_size) - RECORD_OVERHEAD - len(key or b"")
