"""Measurement 1, the ceiling: a bare aiokafka producer loop writing the same records to the topic.

``produce`` is the loop a user writes (``send`` per record, futures gathered): the issue's ceiling.
``produce_batches`` builds the record batches itself (``create_batch``/``send_batch``, as ingest's
batcher does), which skips ``send``'s per-record cost: shown for reference, not used as a target."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from adapters.publisher import create_producer, send_batched

WINDOW = 5_000  # send futures gathered at once


async def produce(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]]) -> float:
    """Write ``records`` (key, value) with ingest's producer settings (acks=all); returns seconds."""
    producer = create_producer(bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        # Metadata and connections. A real record: every drain of the topic reads this one too (a copy of
        # the first, dropped as a duplicate), and none of them pays for a value it cannot parse.
        await (await producer.send(topic, records[0][1], key=records[0][0]))
        started = time.perf_counter()
        for start in range(0, len(records), WINDOW):
            futures = [
                await producer.send(topic, value, key=key) for key, value in records[start : start + WINDOW]
            ]
            await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def produce_batches(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]]) -> float:
    """``produce`` through record batches built by the caller (``send_batched``); returns seconds."""
    producer = create_producer(bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await (await producer.send(topic, b"warm-up", key=b"warm-up"))
        started = time.perf_counter()
        for start in range(0, len(records), WINDOW):
            await asyncio.gather(*await send_batched(producer, topic, records[start : start + WINDOW]))
        return time.perf_counter() - started
    finally:
        await producer.stop()
