"""Concurrent requests' records coalesced into one open Kafka record batch per partition.

``producer.send`` per record (a coroutine, the partitioner, the accumulator) costs far more than appending
to a record batch, but ``producer.send_batch`` waits until the partition's previous batch left, so a batch
per request would serialize concurrent requests (docs/performance.md#hot-path-choices). Here every request
appends to the partition's one open batch; a flusher per partition hands it to the producer and, while the
producer still holds the previous one, the next requests fill the next batch. Each request then awaits the
acknowledgement of the batches holding its records (acks=all), exactly what awaiting per-record send
futures gave. Those futures are shared, so awaiters shield them: a request that times out must not cancel
the others' batch.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from adapters.kafka import RECORD_OVERHEAD

# Resolves to the batch's delivery future once the producer took the batch.
Handoff = asyncio.Future[asyncio.Future[Any]]


class _Open:
    __slots__ = ("builder", "handoff")

    def __init__(self, builder: Any, handoff: Handoff) -> None:
        self.builder = builder
        self.handoff = handoff


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # a request that gave up (timeout) never looks: no "never retrieved" noise


def last_record(delivery: asyncio.Future[Any], count: int) -> asyncio.Future[Any]:
    """The batch's delivery as the metadata of its last record (aiokafka gives the first's), so that
    a journal knows how far the group must commit before the batch is loaded."""
    last: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    last.add_done_callback(_retrieve)

    def resolve(done: asyncio.Future[Any]) -> None:
        if last.done():
            return
        if done.cancelled():
            last.cancel()
        elif (exc := done.exception()) is not None:
            last.set_exception(exc)
        else:
            metadata = done.result()
            last.set_result(metadata._replace(offset=metadata.offset + count - 1))

    delivery.add_done_callback(resolve)
    return last


class PartitionBatcher:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self._open: dict[int, _Open] = {}
        self._full: dict[int, deque[_Open]] = {}
        self._flushing: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._max_record: int = producer._max_request_size  # the limit producer.send enforces

    async def partitions(self) -> list[int]:
        return sorted(await self.producer.partitions_for(self.topic))

    def append(self, partition: int, key: bytes | None, value: bytes) -> Handoff:
        """Queue one record on ``partition``; call ``flush`` after the request's last record.
        Raises MessageSizeTooLargeError, as ``producer.send`` does, for a record the broker would
        refuse: in a shared batch it would fail the other requests' events too."""
        if len(value) + len(key or b"") + RECORD_OVERHEAD > self._max_record:
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
            if size > self._max_record:
                raise MessageSizeTooLargeError(f"a record of {size} bytes exceeds max_request_size")
        entry = self._open.get(partition)
        if entry is not None and entry.builder.append(key=key, value=value, timestamp=None) is not None:
            return entry.handoff
        if entry is not None:  # full (the builder closed itself): the flusher takes it in order
            self._full.setdefault(partition, deque()).append(entry)
        handoff: Handoff = asyncio.get_running_loop().create_future()
        handoff.add_done_callback(_retrieve)
        entry = self._open[partition] = _Open(self.producer.create_batch(), handoff)
        if entry.builder.append(key=key, value=value, timestamp=None) is None:
            del self._open[partition]
            raise MessageSizeTooLargeError(f"a record of {len(value)} bytes exceeds the batch size")
        return handoff

    def flush(self) -> None:
        """Start a flusher for every partition holding records and not being flushed already."""
        for partition in self._open:
            if partition not in self._flushing:
                self._flushing.add(partition)
                task = asyncio.create_task(self._flush(partition))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _flush(self, partition: int) -> None:
        try:
            while True:
                full = self._full.get(partition)
                entry: _Open | None = full.popleft() if full else None
                if entry is None:
                    entry = self._open.pop(partition, None)  # later appends start a new batch
                    if entry is None:
                        return
                    entry.builder.close()
                try:
                    delivery = await self.producer.send_batch(entry.builder, self.topic, partition=partition)
                except Exception as exc:  # the requests of this batch answer 503
                    if not entry.handoff.done():
                        entry.handoff.set_exception(exc)
                else:
                    if not entry.handoff.done():
                        entry.handoff.set_result(last_record(delivery, entry.builder.record_count()))
        finally:
            self._flushing.discard(partition)
