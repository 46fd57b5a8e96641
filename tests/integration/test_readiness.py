"""/readyz of the process role: ClickHouse and Kafka reachable, no partition stuck with lag."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from adapters.clickhouse import ClickHouseStore
from mailpulse.health import health_app
from mailpulse.runtime import processor
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from tests.integration.pipeline import wait_for_records

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


async def _produce_garbage(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(n):
            await producer.send_and_wait(topic, key=f"m{i}".encode(), value=b"x")
    finally:
        await producer.stop()


def test_ready_when_caught_up_and_not_ready_when_stuck(settings: Settings, store: ClickHouseStore) -> None:
    quick = settings.model_copy(update={"stuck_after_s": 30})
    now = [0.0]
    assert quick.kafka_bootstrap is not None
    bootstrap = quick.kafka_bootstrap

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], int]:
        await ensure_topics(bootstrap, quick.topics, quick.partitions)
        async with processor(quick, bootstrap, store) as proc:
            app = health_app(proc, clock=lambda: now[0])
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                await _produce_garbage(bootstrap, quick.status_topic, 6)  # dead letters, still progress
                while not proc.consumer.assignment():
                    await proc.run_once()
                while not proc.drained(6):
                    await proc.run_once()
                ready = (await client.get("/readyz")).json()
                # More records arrive but nobody consumes them: lag with no progress.
                await _produce_garbage(bootstrap, quick.status_topic, 6)
                now[0] = 29.0
                first = await client.get("/readyz")
                now[0] = 30.0
                stuck = await client.get("/readyz")
                alive = (await client.get("/healthz")).status_code
                assert first.status_code == 200, first.text
                assert stuck.status_code == 503
                return ready, stuck.json(), alive

    ready, stuck, alive = asyncio.run(scenario())
    assert ready["ready"] is True and ready["stuck"] == [] and sum(ready["lag"].values()) == 0
    assert stuck["ready"] is False and stuck["stuck"] and "no progress" in stuck["problems"][0]
    assert sum(stuck["lag"].values()) == 6
    assert alive == 200


def test_wait_helper_is_bounded(settings: Settings, store: ClickHouseStore) -> None:
    """wait_for_records gives up instead of hanging when nothing arrives."""

    async def scenario() -> None:
        assert settings.kafka_bootstrap is not None
        await ensure_topics(settings.kafka_bootstrap, settings.topics, settings.partitions)
        async with processor(settings, settings.kafka_bootstrap, store) as proc:
            with pytest.raises(TimeoutError):
                await wait_for_records(proc, 1, timeout_s=0.5)

    asyncio.run(scenario())


def test_ingest_readyz_follows_kafka(settings: Settings, store: ClickHouseStore) -> None:
    """Ready against the live broker; not ready (503, within the publish timeout) against a dead port."""
    from adapters.publisher import KafkaPublisher, create_producer
    from ingest.app import create_app
    from mailpulse.broker import free_port
    from mailpulse.runtime import ingest_config

    assert settings.kafka_bootstrap is not None

    async def probe(bootstrap: str, start: bool) -> int:
        producer = create_producer(bootstrap, False)
        if start:
            await producer.start()
        publisher = KafkaPublisher(producer, settings.status_topic, settings.deadletter_topic, 1.0)
        app = create_app(publisher, ingest_config(settings))
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                return (await c.get("/readyz")).status_code
        finally:
            await producer.stop()

    assert asyncio.run(probe(settings.kafka_bootstrap, start=True)) == 200
    assert asyncio.run(probe(f"127.0.0.1:{free_port()}", start=False)) == 503
