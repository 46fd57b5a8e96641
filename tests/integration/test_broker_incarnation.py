"""An embedded broker starts its offsets at 0 again each time it starts. Insert deduplication tokens
derive from offsets, so a new broker's first batch has the positions of an old broker's first batch:
with the broker's incarnation in the token, ClickHouse still loads it instead of dropping it as a
retry."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from adapters.clickhouse import ClickHouseStore
from adapters.publisher import encode
from mailpulse.broker import EmbeddedBroker
from mailpulse.runtime import processor
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from schemas.sendgrid import parse_sendgrid_event

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def envelope(n: int) -> bytes:
    event = {
        "email": f"user{n}@example.com",
        "timestamp": 1_763_900_000 + n,
        "event": "delivered",
        "sg_event_id": f"incarnation-{n}",
        "sg_message_id": f"incarnation{n}.filter-0",
    }
    return encode(parse_sendgrid_event(event, datetime.now(UTC)))


async def load_one(settings: Settings, store: ClickHouseStore, value: bytes, incarnation: str) -> None:
    """On a fresh broker: one record at partition 0, offset 0, loaded by a processor."""
    with EmbeddedBroker() as broker:
        await ensure_topics(broker.bootstrap, settings.topics, settings.partitions)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            await (await producer.send(settings.status_topic, value, key=b"k", partition=0))
        finally:
            await producer.stop()
        async with processor(settings, broker.bootstrap, store, incarnation) as proc:
            deadline = time.monotonic() + 60
            while not proc.drained(1):
                assert time.monotonic() < deadline, "the record was not loaded in time"
                await proc.run_once()
            await proc.flush()


def test_a_new_broker_first_batch_is_loaded_though_its_positions_were_seen(
    settings: Settings, store: ClickHouseStore
) -> None:
    async def scenario() -> None:
        await load_one(settings, store, envelope(1), "first-broker")
        await load_one(settings, store, envelope(2), "second-broker")

    asyncio.run(scenario())
    loaded = store.query(f"SELECT event_id FROM {store.database}.events ORDER BY event_id")
    assert [row[0] for row in loaded] == ["incarnation-1", "incarnation-2"]
