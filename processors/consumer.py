"""The status processor: consume a batch, merge, load ClickHouse, then commit offsets.

Order per batch (never reordered): decode -> dead-letter the undecodable (awaited) -> rebuild the
state of messages not in cache from email_events -> merge -> load ClickHouse -> commit offsets.
A crash anywhere before the commit replays the batch; rows are keyed and the insert is deduplicated
by a position-derived token, so the replay changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from processors.batch import Consumed, MergeResult, dedup_token, merge_batch, offset_ranges
from processors.cache import StateCache
from processors.decode import Undecodable, decode
from processors.rows import event_row, state_row
from processors.state import MessageState, fold
from processors.store import ClickHouseStore

log = logging.getLogger(__name__)
RETRY_BACKOFF_S = 1.0


@dataclass(slots=True)
class ProcessorStats:
    batches: int = 0
    records: int = 0
    loaded_events: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    load_failures: int = 0


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: StatusProcessor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Wait for the batch in flight to load and commit before the partitions move on.
        async with self.processor.lock:
            self.processor.cache.drop_partitions({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        # Another member may have merged events of these messages: rebuild from ClickHouse.
        self.processor.cache.drop_partitions({tp.partition for tp in assigned})


class StatusProcessor:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        deadletter: AIOKafkaProducer,
        store: ClickHouseStore,
        *,
        topic: str,
        deadletter_topic: str,
        batch_max_records: int,
        batch_wait_ms: int,
        cache_messages: int,
    ) -> None:
        self.consumer = consumer
        self.deadletter = deadletter
        self.store = store
        self.topic = topic
        self.deadletter_topic = deadletter_topic
        self.batch_max_records = batch_max_records
        self.batch_wait_ms = batch_wait_ms
        self.cache = StateCache(cache_messages)
        self.lock = asyncio.Lock()
        self.stats = ProcessorStats()

    def subscribe(self) -> None:
        self.consumer.subscribe([self.topic], listener=_Rebalance(self))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.run_once()

    async def run_once(self) -> int:
        """Consume and load one batch; returns the number of records handled."""
        fetched = await self.consumer.getmany(
            timeout_ms=self.batch_wait_ms, max_records=self.batch_max_records
        )
        records = [r for batch in fetched.values() for r in batch]
        if not records:
            return 0
        async with self.lock:
            try:
                await self._handle(records)
            except Exception:
                self.stats.load_failures += 1
                log.exception("batch failed; replaying it after %.1fs", RETRY_BACKOFF_S)
                self.cache.drop_partitions({tp.partition for tp in fetched})
                for tp, batch in fetched.items():
                    self.consumer.seek(tp, batch[0].offset)
                await asyncio.sleep(RETRY_BACKOFF_S)
                return 0
        return len(records)

    async def _handle(self, records: Sequence[ConsumerRecord]) -> None:
        consumed: list[Consumed] = []
        dead = []
        for record in records:
            try:
                consumed.append(Consumed(record.partition, record.offset, decode(record.value)))
            except Undecodable as exc:
                dead.append(self._dead_letter(record, str(exc)))
        if dead:
            await asyncio.gather(*dead)
        ranges = offset_ranges((r.partition, r.offset) for r in records)
        result = await asyncio.to_thread(self._merge_and_load, consumed, dedup_token(self.topic, ranges))
        await self.consumer.commit({TopicPartition(self.topic, p): hi + 1 for p, (_, hi) in ranges.items()})
        self.stats.batches += 1
        self.stats.records += len(records)
        self.stats.loaded_events += len(result.new_events)
        self.stats.duplicates += result.duplicates
        self.stats.dead_letters += len(dead)

    def _merge_and_load(self, consumed: list[Consumed], token: str) -> MergeResult:
        partition_of = {c.event.message_id: c.partition for c in consumed}
        states: dict[str, MessageState] = {}
        for message_id, partition in partition_of.items():
            cached = self.cache.get(partition, message_id)
            if cached is not None:
                states[message_id] = cached
        missing = [m for m in partition_of if m not in states]
        for message_id, events in self.store.load_events(missing).items():
            states[message_id] = fold(message_id, events)
        for message_id in missing:
            states.setdefault(message_id, MessageState(message_id))
        result = merge_batch(consumed, states.__getitem__)
        self.store.write(
            [event_row(c.event, c.partition, c.offset) for c in result.new_events],
            [state_row(s) for s in result.changed_states],
            token,
        )
        # Only a loaded state may be cached: a failed load drops the partitions (see run_once).
        for message_id, partition in partition_of.items():
            self.cache.put(partition, states[message_id])
        return result

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        value = orjson.dumps(
            {
                "stage": "processor",
                "reason": reason,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "value": (record.value or b"").decode("utf-8", "replace"),
            }
        )
        await (await self.deadletter.send(self.deadletter_topic, key=record.key, value=value))


def create_consumer(bootstrap: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,  # offsets are committed only after the ClickHouse load
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
