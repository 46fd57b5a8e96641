"""Run ingest + processor on the real broker and chDB inside a test (bounded in time)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from adapters.clickhouse import ClickHouseStore
from mailpulse.broker import free_port
from mailpulse.runtime import processor, serve_ingest, wait_listening
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from processors.status_processor import StatusProcessor


@contextlib.asynccontextmanager
async def running_pipeline(
    settings: Settings, store: ClickHouseStore
) -> AsyncIterator[tuple[httpx.AsyncClient, StatusProcessor]]:
    bootstrap = settings.kafka_bootstrap
    assert bootstrap is not None
    await ensure_topics(bootstrap, settings.topics, settings.partitions)
    port = free_port()
    stop_ingest, stop_processor = asyncio.Event(), asyncio.Event()
    ingest = asyncio.create_task(serve_ingest(settings, bootstrap, stop_ingest, port))
    await wait_listening("127.0.0.1", port)
    try:
        async with processor(settings, bootstrap, store) as proc:
            consuming = asyncio.create_task(proc.run(stop_processor))
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                    yield client, proc
            finally:
                stop_processor.set()
                await consuming
    finally:
        stop_ingest.set()
        await ingest


async def wait_for_records(proc: StatusProcessor, records: int, timeout_s: float = 30.0) -> None:
    """Wait until the processor consumed at least ``records`` records and loaded all it consumed."""
    deadline = time.monotonic() + timeout_s
    while not proc.drained(records):
        if time.monotonic() > deadline:
            raise TimeoutError(f"processor handled {proc.stats.records} of {records} records")
        await asyncio.sleep(0.05)


async def read_topic(
    bootstrap: str, topic: str, expected: int, timeout_s: float = 15.0
) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning, once ``expected`` of them are there."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records
