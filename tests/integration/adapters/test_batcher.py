"""Concurrent publishes share per-partition record batches (adapters.batcher) on the real broker: every
event is on the topic exactly once, in the partition ``producer.send`` would pick for its key, and each
publish returned only after its events were acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from adapters.publisher import KafkaPublisher, PublishFailed, create_producer
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from schemas.sendgrid import parse_sendgrid_event
from tests.integration.pipeline import read_topic

pytestmark = [pytest.mark.kafka]


def _event(request: int, index: int) -> dict[str, object]:
    return {
        "email": f"user{index}@example.com", "timestamp": 1_790_000_000 + index, "event": "delivered",
        "sg_event_id": f"r{request}-e{index}", "sg_message_id": f"m{request}x{index}.filter0001",
    }  # fmt: skip


def test_concurrent_publishes_each_land_once_in_their_key_partition(settings: Settings) -> None:
    asyncio.run(_scenario(settings))


@contextlib.asynccontextmanager
async def _publisher(settings: Settings) -> AsyncIterator[KafkaPublisher]:
    """Ingest's publisher on the test's topics, its producer stopped on exit."""
    assert settings.kafka_bootstrap is not None
    topics = [settings.status_topic, settings.deadletter_topic]
    await ensure_topics(settings.kafka_bootstrap, topics, settings.partitions)
    producer = create_producer(settings.kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        yield KafkaPublisher(producer, settings.status_topic, settings.deadletter_topic, 10.0)
    finally:
        await producer.stop()


async def _scenario(settings: Settings) -> None:
    bootstrap = settings.kafka_bootstrap
    assert bootstrap is not None
    received = datetime.now(UTC)
    # 40 requests of 1..60 events each, all at once (batched and single-event traffic mixed).
    requests = [
        [parse_sendgrid_event(_event(r, i), received) for i in range(1 + (r * 7) % 60)] for r in range(40)
    ]
    async with _publisher(settings) as publisher:
        await asyncio.gather(*(publisher.publish(events) for events in requests))
    expected = {e.event_id: e.message_id for events in requests for e in events}
    records = await read_topic(bootstrap, settings.status_topic, len(expected), 15.0)
    ids = [orjson.loads(r.value)["event_id"] for r in records]
    assert sorted(ids) == sorted(expected)  # each once
    partitions = list(range(settings.partitions))
    for record in records:
        key = expected[orjson.loads(record.value)["event_id"]].encode()
        assert record.key == key
        assert record.partition == DefaultPartitioner()(key, partitions, partitions)


def test_an_oversized_event_fails_only_its_own_request(settings: Settings) -> None:
    asyncio.run(_oversized(settings))


async def _oversized(settings: Settings) -> None:
    bootstrap = settings.kafka_bootstrap
    assert bootstrap is not None
    received = datetime.now(UTC)
    normal = [parse_sendgrid_event(_event(1, i), received) for i in range(20)]
    huge = {**_event(2, 0), "reason": "x" * 1_100_000}  # over the producer's 1 MB max_request_size
    oversized = [parse_sendgrid_event(_event(2, i), received) for i in range(1, 20)]
    oversized.append(parse_sendgrid_event(huge, received))
    async with _publisher(settings) as publisher:
        outcomes = await asyncio.gather(
            publisher.publish(normal), publisher.publish(oversized), return_exceptions=True
        )
    assert outcomes[0] is None
    assert isinstance(outcomes[1], PublishFailed)
    assert "MessageSizeTooLarge" in str(outcomes[1])
    records = await read_topic(bootstrap, settings.status_topic, len(normal), 15.0)
    assert {e.event_id for e in normal} <= {orjson.loads(r.value)["event_id"] for r in records}


def test_bytes_of_a_failed_request_are_released_once_kafka_settles_them(settings: Settings) -> None:
    """A request failing halfway through its appends (an oversized last event) still has its earlier
    records in shared batches: they are flushed, and the bytes the publisher counts for them are
    released once Kafka acknowledges, with no other request coming to flush them."""

    async def scenario() -> tuple[BaseException | None, int, int]:
        received = datetime.now(UTC)
        huge = {**_event(3, 0), "reason": "x" * 1_100_000}  # over the producer's 1 MB max_request_size
        events = [parse_sendgrid_event(_event(3, i), received) for i in range(1, 20)]
        events.append(parse_sendgrid_event(huge, received))
        async with _publisher(settings) as publisher:
            failure: BaseException | None = None
            try:
                await publisher.publish(events)
            except PublishFailed as exc:
                failure = exc
            held = publisher.queued_bytes
            for _ in range(100):  # bounded wait for the acknowledgements, not for a time
                if not publisher.queued_bytes:
                    break
                await asyncio.sleep(0.1)
            return failure, held, publisher.queued_bytes

    failure, held, left = asyncio.run(scenario())
    assert isinstance(failure, PublishFailed) and "MessageSizeTooLarge" in str(failure)
    assert held > 0  # counted while the producer held them
    assert left == 0
