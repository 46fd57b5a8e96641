"""Measurement 4, the ceiling of the processor's shape on one core: the two things it cannot avoid,
each done bare on the same records. A Kafka drain that does nothing with what it fetches (getmany and
commit, the processor's consumer settings and batch size) and a byte insert of the same values into the
same schema (``ClickHouseStore.load``, batch for batch). One core does them one after the other, so
their rates compose as 1 / (1/a + 1/b)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from adapters.clickhouse import ClickHouseStore
from processors.status_processor import create_consumer

Fetched = dict[TopicPartition, list[ConsumerRecord]]
SESSION_TIMEOUT_MS = 2000  # Tansu delays a join by half of it: short, as for the bench's processors


def fresh_consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """The processor's consumer (same fetch settings) in a group of its own, reading from the start."""
    consumer = create_consumer(bootstrap, f"bench-{uuid.uuid4().hex[:8]}", SESSION_TIMEOUT_MS)
    consumer.subscribe([topic])
    return consumer


async def wait_assignment(consumer: AIOKafkaConsumer, timeout_s: float = 30.0) -> None:
    """The clocks start once the group has assigned the partitions (the join is not the drain's)."""
    async with asyncio.timeout(timeout_s):
        while not consumer.assignment():  # noqa: ASYNC110 (aiokafka has no assignment event)
            await asyncio.sleep(0.02)


async def timed_drain(
    bootstrap: str, topic: str, records: int, batch: int, wait_ms: int, handle: Callable[[Fetched], None]
) -> float:
    """Seconds to fetch ``records`` records, ``handle`` each non-empty fetch, and commit after it."""
    consumer = fresh_consumer(bootstrap, topic)
    await consumer.start()
    try:
        await wait_assignment(consumer)
        started = time.perf_counter()
        seen = 0
        while seen < records:
            fetched = await consumer.getmany(timeout_ms=wait_ms, max_records=batch)
            if fetched:
                handle(fetched)
                await consumer.commit()
                seen += sum(len(r) for r in fetched.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def bare_drain(bootstrap: str, topic: str, records: int, batch: int, wait_ms: int) -> float:
    """Seconds to fetch ``records`` records and commit after each fetch, touching none of them."""
    return await timed_drain(bootstrap, topic, records, batch, wait_ms, lambda _: None)


def byte_insert(store: ClickHouseStore, values: Sequence[bytes], batch: int) -> float:
    """Seconds to load ``values`` into ``store``'s landing table, ``batch`` at a time, in order."""
    started = time.perf_counter()
    for start in range(0, len(values), batch):
        store.load(values[start : start + batch], f"bench-ceiling|{start}")
    return time.perf_counter() - started


def composed(drain_per_s: float, insert_per_s: float) -> float:
    """Events/s of one core that drains and then inserts each batch."""
    if drain_per_s <= 0 or insert_per_s <= 0:
        return 0.0
    return 1 / (1 / drain_per_s + 1 / insert_per_s)
