"""Ingest under test: the real app with a real Kafka publisher on the session's Tansu broker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.publisher import KafkaPublisher, create_producer
from ingest.app import IngestConfig, create_app
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from tests.integration.pipeline import read_topic

BASE_URL = "http://ingest.test"


@pytest.fixture(scope="session")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@contextlib.asynccontextmanager
async def ingest_client(
    settings: Settings, config: IngestConfig | None = None, bootstrap: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the ingest app (in-process ASGI) whose publisher writes to real Kafka."""
    bootstrap = bootstrap or settings.kafka_bootstrap
    assert bootstrap is not None
    await ensure_topics(bootstrap, [settings.status_topic, settings.deadletter_topic], settings.partitions)
    producer = create_producer(bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        publisher = KafkaPublisher(
            producer,
            settings.status_topic,
            settings.deadletter_topic,
            settings.publish_timeout_s,
            settings.ingest_max_queued_bytes,
        )
        transport = httpx.ASGITransport(app=create_app(publisher, config))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=30) as client:
            yield client
    finally:
        await producer.stop()


async def published(settings: Settings, expected: int, topic: str | None = None) -> list[dict[str, Any]]:
    """The decoded records of the status topic (or ``topic``), once ``expected`` are there."""
    assert settings.kafka_bootstrap is not None
    records = await read_topic(settings.kafka_bootstrap, topic or settings.status_topic, expected, 10.0)
    return [orjson.loads(r.value) for r in records]
