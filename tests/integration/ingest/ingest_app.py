"""Ingest under test: the real app with a real Kafka publisher on the session's Tansu broker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from adapters.publisher import KafkaPublisher, create_producer
from ingest.app import IngestConfig, create_app
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from tests.integration.pipeline import read_topic

BASE_URL = "http://ingest.test"
TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # the Twilio auth token of the signed apps


@contextlib.asynccontextmanager
async def kafka_publisher(
    settings: Settings,
    partitions: int | None = None,
    timeout_s: float | None = None,
    bootstrap: str | None = None,
) -> AsyncIterator[KafkaPublisher]:
    """A publisher to the test's status and dead-letter topics (created with ``partitions``, default
    the settings'), its producer stopped on exit."""
    bootstrap = bootstrap or settings.kafka_bootstrap
    assert bootstrap is not None
    topics = [settings.status_topic, settings.deadletter_topic]
    await ensure_topics(bootstrap, topics, partitions or settings.partitions)
    producer = create_producer(bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        yield KafkaPublisher(
            producer,
            settings.status_topic,
            settings.deadletter_topic,
            timeout_s or settings.publish_timeout_s,
            settings.ingest_max_queued_bytes,
        )
    finally:
        await producer.stop()


def asgi_client(app: Any) -> httpx.AsyncClient:
    """An HTTP client calling ``app`` in process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=30)


@contextlib.asynccontextmanager
async def ingest_client(
    settings: Settings, config: IngestConfig | None = None, bootstrap: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the ingest app (in-process ASGI) whose publisher writes to real Kafka."""
    async with (
        kafka_publisher(settings, bootstrap=bootstrap) as publisher,
        asgi_client(create_app(publisher, config)) as client,
    ):
        yield client


async def published(settings: Settings, expected: int, topic: str | None = None) -> list[dict[str, Any]]:
    """The decoded records of the status topic (or ``topic``), once ``expected`` are there."""
    assert settings.kafka_bootstrap is not None
    records = await read_topic(settings.kafka_bootstrap, topic or settings.status_topic, expected, 10.0)
    return [orjson.loads(r.value) for r in records]
