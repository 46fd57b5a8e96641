"""The status processor: consume, reorder, merge, load ClickHouse, publish transitions, commit.

Per batch, never reordered: decode (undecodable -> dead-letter topic, awaited) -> per-partition
reorder buffer -> for the emitted events: rebuild uncached message states from email_events -> merge
-> load ClickHouse -> publish transitions -> commit each partition up to its oldest event still
waiting. A crash anywhere before the commit replays from there: replayed events already loaded are
recognised as duplicates by the rebuilt state, and inserts carry position-derived tokens.
A load that fails is retried with the same events (same token) before anything new is fetched.

Rebalances: the processor loads and commits only partitions it owns, i.e. adopted (assigned, reorder
buffer set up from the commit metadata) and not since revoked. Records of any other partition are
dropped unread: whoever owns the partition resumes from its committed offset and reads them. See
``StatusProcessor.release``, ``adopt`` and ``_sort_out`` for each interleaving, and docs/guarantees.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from ingest.batcher import value_room
from ingest.publisher import send_batched
from processors import metrics
from processors.batch import (
    Consumed,
    MergeResult,
    Transition,
    dedup_token,
    merge_batch,
    transition_value,
)
from processors.cache import StateCache
from processors.collector import collector_paused
from processors.columns import Columns, event_columns, state_columns, transition_columns
from processors.decode import Undecodable, decode
from processors.reorder import PartitionReorder, decode_watermark, encode_watermark
from processors.stall import StallDetector
from processors.state import MessageState, fold
from processors.store import ClickHouseStore
from schemas.deadletter import dead_letter
from schemas.event import CanonicalEvent

log = logging.getLogger(__name__)
RETRY_BACKOFF_S = 1.0


@dataclass(slots=True)
class ProcessorStats:
    """This instance's counters (the Prometheus ones are process-wide)."""

    batches: int = 0
    records: int = 0
    loaded_events: int = 0
    duplicates: int = 0
    late: int = 0
    dead_letters: int = 0
    load_failures: int = 0
    transitions: int = 0
    commit_failures: int = 0
    revoked: int = 0  # partitions revoked from this instance (each revocation counted once it begins)
    unowned: int = 0  # records dropped because their partition was not (or no longer) ours


@dataclass(frozen=True, slots=True)
class _Owned:
    partition: int
    state: MessageState


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    topic: str
    deadletter_topic: str
    transitions_topic: str
    batch_max_records: int
    batch_wait_ms: int
    cache_messages: int
    lateness: timedelta
    max_wait_s: float
    stuck_after_s: float = 120.0
    # Prefixed to insert deduplication tokens: an embedded broker starts its offsets at 0 again on
    # every start, and a token of an earlier run must not make ClickHouse drop a new batch.
    token_prefix: str = ""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: StatusProcessor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.processor.release({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.processor.adopt(assigned)


class StatusProcessor:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        store: ClickHouseStore,
        config: ProcessorConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.store = store
        self.config = config
        self.clock = clock
        self.cache = StateCache(config.cache_messages)
        self.reorders: dict[int, PartitionReorder] = {}
        self.lock = asyncio.Lock()
        self.stats = ProcessorStats()
        self._pending: list[Consumed] = []  # emitted but not yet loaded (a failed load)
        self._committed: dict[int, int] = {}
        # Revocations are numbered; a partition maps to the number of its latest one. A batch notes the
        # number when getmany returns, so it can tell records fetched before a revocation (stale).
        self._revocations = 0
        self._revoked_at: dict[int, int] = {}
        self.stall = StallDetector(config.stuck_after_s)

    def subscribe(self) -> None:
        self.consumer.subscribe([self.config.topic], listener=_Rebalance(self))

    @property
    def buffered(self) -> int:
        return sum(len(r) for r in self.reorders.values())

    def drained(self, records: int) -> bool:
        """Consumed at least ``records`` records and loaded everything it consumed."""
        return self.stats.records >= records and not self._pending and self.buffered == 0

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set, then flush the reorder buffers, load and commit."""
        while not stop.is_set():
            await self.run_once()
        await self.flush()

    async def flush(self) -> None:
        """Emit everything the reorder buffers hold, load it and commit."""
        async with self.lock:
            with collector_paused():  # a batch allocates a lot, in no cycles
                self._pending.extend(c for r in self.reorders.values() for c in r.flush())
                await self._load_and_commit()

    async def run_once(self) -> int:
        """One step: retry a pending load, or fetch and handle a batch. Returns records handled."""
        if self._pending:
            async with self.lock:
                with collector_paused():  # a batch allocates a lot, in no cycles
                    await self._load_and_commit()
            return 0
        fetched = await self.consumer.getmany(
            timeout_ms=self.config.batch_wait_ms, max_records=self.config.batch_max_records
        )
        fetched_at = self._revocations  # in the step getmany returned in: no revocation in between
        records = [r for batch in fetched.values() for r in batch]
        del fetched
        count = len(records)
        async with self.lock:
            with collector_paused():  # a batch allocates a lot, in no cycles
                await self._accept(records, fetched_at)
                # Consumed holds what is needed of them: freed now, not walked by the collection
                # that may follow the pause.
                del records
                self._pending.extend(self._overdue())
                await self._load_and_commit()
        metrics.BUFFERED.set(self.buffered)
        return count

    async def _accept(self, records: Sequence[ConsumerRecord], fetched_at: int) -> None:
        """Push the records of owned partitions into their reorder buffers (see ``_sort_out``)."""
        # Decoding a large batch takes about a second: off the event loop, so heartbeats keep going.
        decoded = await asyncio.to_thread(_decode_all, records)
        # Sorted out after the decode, which ``adopt`` may have overlapped, and with no await before the
        # pushes: ownership cannot change between the check and the push.
        owned = self._sort_out(records, fetched_at)
        now = self.clock()
        dead = []
        accepted = 0
        for record, event in zip(records, decoded, strict=True):
            reorder = owned.get(record.partition)
            if reorder is None:
                continue
            accepted += 1
            if isinstance(event, Undecodable):
                reorder.skip(record.offset)
                dead.append(self._dead_letter(record, str(event)))
                continue
            self._pending.extend(reorder.push(Consumed(record.partition, record.offset, event), now))
        if dead:
            await asyncio.gather(*dead)
        self.stats.records += accepted
        self.stats.unowned += len(records) - accepted
        self.stats.dead_letters += len(dead)
        metrics.RECORDS.inc(accepted)
        metrics.DEAD_LETTERS.inc(len(dead))

    def _sort_out(self, records: Sequence[ConsumerRecord], fetched_at: int) -> dict[int, PartitionReorder]:
        """The reorder buffers of the fetched partitions this processor owns; the records of the others
        are dropped. getmany returns only partitions assigned at the time, so a fetched partition is:

        - revoked since the fetch (``fetched_at``): the records belong to a finished assignment. Its
          release committed no further than them, and the partition's next owner (this processor too,
          if it got the partition back) resumes from the commit: dropped.
        - adopted and still assigned: accepted.
        - assigned, not revoked since, but its ``adopt`` not done yet (aiokafka fetches as soon as it
          has the assignment and runs ``adopt`` alongside): the records are the next ones of the
          partition, so its position goes back to the first of them, to read them again once adopted.
        - anything else (not assigned): dropped; the owner reads them from its commit.
        """
        first: dict[int, int] = {}
        for record in records:
            first[record.partition] = min(first.get(record.partition, record.offset), record.offset)
        assigned = {tp.partition for tp in self.consumer.assignment() if tp.topic == self.config.topic}
        owned: dict[int, PartitionReorder] = {}
        for partition, offset in first.items():
            reorder = self.reorders.get(partition)
            if self._revoked_at.get(partition, 0) > fetched_at or partition not in assigned:
                continue
            if reorder is not None:
                owned[partition] = reorder
            else:
                self.consumer.seek(TopicPartition(self.config.topic, partition), offset)
                log.info(
                    "partition %d not adopted yet: its records are read again from %d", partition, offset
                )
        dropped = sum(r.partition not in owned for r in records)
        if dropped:
            log.info("dropped %d records of partitions not owned", dropped)
        return owned

    def _overdue(self) -> list[Consumed]:
        now = self.clock()
        return [c for r in self.reorders.values() if r.overdue(now) for c in r.flush()]

    async def _load_and_commit(self) -> None:
        emitted = self._pending
        if emitted:
            positions = ((c.partition, c.offset) for c in emitted)
            token = dedup_token(self.config.token_prefix + self.config.topic, positions)
            started = time.perf_counter()
            try:
                result, states = await asyncio.to_thread(self._merge, emitted)
                # Publish before the load: a crash between the two repeats transitions on the topic
                # (readers dedupe) instead of losing them, since a replay finds the events loaded.
                # The columns are built while Kafka acknowledges (the wait used to leave the core idle).
                acks = await self._publish_transitions(result.transitions)
                try:
                    columns = await asyncio.to_thread(self._columns, result)
                finally:
                    await asyncio.gather(*acks)
                await asyncio.to_thread(self.store.write_columns, *columns, token)
            except Exception:
                self.stats.load_failures += 1
                metrics.LOAD_FAILURES.inc()
                log.exception("load of %d events failed; retrying in %.1fs", len(emitted), RETRY_BACKOFF_S)
                # Cached states may hold the unloaded events: rebuild them from ClickHouse next time.
                self.cache.drop_partitions({c.partition for c in emitted})
                await asyncio.sleep(RETRY_BACKOFF_S)
                return
            for state in states:  # only loaded states of owned partitions may be cached
                if state.partition in self.reorders:
                    self.cache.put(state.partition, state.state)
            metrics.LOAD_SECONDS.observe(time.perf_counter() - started)
            metrics.BATCH_EVENTS.observe(len(emitted))
            self._pending = []
            self._count(emitted, result)
        await self._commit()

    def _count(self, emitted: list[Consumed], result: MergeResult) -> None:
        late = sum(c.late for c in emitted)
        self.stats.batches += 1
        self.stats.loaded_events += len(result.new_events)
        self.stats.duplicates += result.duplicates
        self.stats.late += late
        self.stats.transitions += len(result.transitions)
        metrics.LOADED.inc(len(result.new_events))
        metrics.DUPLICATES.inc(result.duplicates)
        metrics.LATE.inc(late)
        metrics.TRANSITIONS.inc(len(result.transitions))

    async def _commit(self) -> None:
        """Commit the owned partitions that progressed. Owned and assigned both: a commit naming a
        partition the consumer does not hold fails as a whole, and would stall the others."""
        assigned = self.consumer.assignment()
        offsets = {}
        for partition, reorder in self.reorders.items():
            if TopicPartition(self.config.topic, partition) not in assigned:
                continue
            point = reorder.commit_point()
            if point is not None and self._committed.get(partition) != point.offset:
                tp = TopicPartition(self.config.topic, partition)
                offsets[tp] = OffsetAndMetadata(point.offset, encode_watermark(point.watermark))
        if offsets:
            try:
                await self.consumer.commit(offsets)
            except KafkaError as exc:
                # The group moved on (rebalance, expired member): what was loaded stays loaded, and
                # whoever owns the partitions next replays from the last commit and finds it there.
                self.stats.commit_failures += 1
                metrics.COMMIT_FAILURES.inc()
                log.warning(
                    "commit of %s failed (%s); the next owner replays from the last commit", offsets, exc
                )
                return
            self._committed.update({tp.partition: meta.offset for tp, meta in offsets.items()})

    def _merge(self, emitted: list[Consumed]) -> tuple[MergeResult, list[_Owned]]:
        """Rebuild the states of uncached messages from email_events, then merge (blocking)."""
        partition_of = {c.event.message_id: c.partition for c in emitted}
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
        result = merge_batch(emitted, states.__getitem__)
        return result, [_Owned(p, states[m]) for m, p in partition_of.items()]

    @staticmethod
    def _columns(result: MergeResult) -> tuple[Columns, Columns, Columns]:
        return (
            event_columns(result.new_events),
            state_columns(result.changed_states),
            transition_columns(result.transitions),
        )

    async def _publish_transitions(self, transitions: list[Transition]) -> list[asyncio.Future[Any]]:
        """Queue the transitions; await the returned futures before the load (and so the commit):
        at least once, readers dedupe on dedupe_key."""
        records = [(t.item.event.message_id.encode(), transition_value(t)) for t in transitions]
        return await send_batched(self.producer, self.config.transitions_topic, records)

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        about = {
            "stage": "processor",
            "reason": reason,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
        }
        raw = record.value or b""
        text = raw.decode("utf-8", "replace")
        value = dead_letter(about, "value", text, value_room(self.producer, record.key), size=len(raw))
        await (await self.producer.send(self.config.deadletter_topic, key=record.key, value=value))

    async def readiness(self, now: float) -> dict[str, object]:
        """Kafka answers, and no assigned partition has lag while its commit stands still."""
        assigned = sorted(self.consumer.assignment(), key=lambda tp: tp.partition)
        ends = await self.consumer.end_offsets(assigned) if assigned else {}
        for tp in assigned:
            committed = self._committed.get(tp.partition)
            if committed is None:
                committed = await self.consumer.committed(tp) or 0
            # Tansu's ListOffsets counts the last batch as one record; fetch high-watermarks are right.
            end = max(ends[tp], self.consumer.highwater(tp) or 0)
            self.stall.observe(tp.partition, committed, end, now)
        for partition, lag in self.stall.lags().items():
            metrics.LAG.labels(str(partition)).set(lag)
        stuck = self.stall.stuck(now)
        return {"partitions": [tp.partition for tp in assigned], "lag": self.stall.lags(), "stuck": stuck}

    async def release(self, partitions: set[int]) -> None:
        """Partitions are leaving (the revocation callback; the member keeps them until it returns):
        flush their reorder buffers, load, commit, and forget their buffers, pending events and cached
        states. If the load fails, nothing of theirs is committed and the next owner replays it.

        Numbered before waiting for the lock: a batch in flight then drops what it fetched of them and
        has not pushed yet (its commit stays below those records), so the batch and the release load
        each event at most once between them, and the next owner reads the rest from the commit."""
        self._revocations += 1
        for partition in partitions:
            self._revoked_at[partition] = self._revocations
        self.stats.revoked += len(partitions)
        async with self.lock:
            try:
                with collector_paused():  # a batch allocates a lot, in no cycles
                    self._pending.extend(
                        c for p in partitions if p in self.reorders for c in self.reorders[p].flush()
                    )
                    await self._load_and_commit()
            finally:  # forgotten even if the load or the commit raised: the next owner replays them
                self._pending = [c for c in self._pending if c.partition not in partitions]
                for partition in partitions:
                    self.reorders.pop(partition, None)
                    self._committed.pop(partition, None)
                self.stall.forget(partitions)
                self.cache.drop_partitions(partitions)

    async def adopt(self, assigned: list[TopicPartition]) -> None:
        """New partitions: their messages may have changed elsewhere, so states are rebuilt from
        ClickHouse; the reorder watermark resumes from the commit metadata (EPOCH if there is none).

        Not under the lock: aiokafka does not heartbeat during this callback, so it must not wait for a
        batch. The buffers appear at once after the one await, and until then a batch re-reads the
        records it fetched of these partitions (``_sort_out``). aiokafka revokes every partition before
        assigning again, so a buffer replaced here is empty; the consumer's position restarts from the
        commit, which is where a fresh buffer starts too."""
        self.cache.drop_partitions({tp.partition for tp in assigned})
        try:  # aiokafka's public committed() drops the metadata; its coordinator returns it
            committed = await self.consumer._coordinator.fetch_committed_offsets(assigned)
        except Exception:
            log.warning("could not read commit metadata; reorder watermarks restart", exc_info=True)
            committed = {}
        for tp in assigned:
            if tp.topic != self.config.topic:
                continue
            meta = committed.get(tp)
            watermark = decode_watermark(meta.metadata if meta is not None else None)
            self.reorders[tp.partition] = PartitionReorder(
                self.config.lateness, self.config.max_wait_s, watermark
            )
            self._committed.pop(tp.partition, None)


def _decode_all(records: Sequence[ConsumerRecord]) -> list[CanonicalEvent | Undecodable]:
    out: list[CanonicalEvent | Undecodable] = []
    for record in records:
        try:
            out.append(decode(record.value))
        except Undecodable as exc:
            # Kept without its traceback, which holds this frame, whose ``out`` holds the exception:
            # that cycle left the whole decoded batch to the cycle collector.
            out.append(exc.with_traceback(None))
    return out


def create_consumer(bootstrap: str, group: str, session_timeout_ms: int = 10_000) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=min(3000, session_timeout_ms // 4),
        enable_auto_commit=False,  # offsets are committed only after the ClickHouse load
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
