"""The status processor: fetch record values, hand them to ClickHouse as one insert, commit.

Per batch: getmany -> the values of owned partitions -> record the batch's offset ranges (in
ClickHouse, ``processors.recorded``) -> one insert into the landing table, whose
materialized views parse and merge -> commit each partition's next offset. Python touches each event
only to put its value in a list: ClickHouse parses, deduplicates and merges.

The insert's deduplication token derives from the batch's Kafka positions, never from its contents.
A crash before the commit makes the next owner (this processor again after a restart) read the
recorded ranges and load exactly that batch again, under the same token: ClickHouse drops it if it
had landed. A load that fails for another reason than its input is retried with the same batch
(same token) before anything new is fetched. A value ClickHouse cannot parse is found by bisection
and dead-lettered (``processors.load``).

Rebalances: the processor loads and commits only partitions it owns, i.e. adopted (assigned, its
recorded batch read) and not since revoked. Records of any other partition are dropped unread:
whoever owns the partition resumes from its committed offset and reads them. See
``StatusProcessor.release``, ``adopt`` and ``_sort_out`` for each interleaving, and docs/guarantees.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from adapters.clickhouse import ClickHouseStore
from adapters.kafka import value_room
from processors import metrics, recorded
from processors.load import Ranges, Rejected, dedup_token, load_or_bisect
from processors.stall import StallDetector
from schemas.deadletter import dead_letter

log = logging.getLogger(__name__)
RETRY_BACKOFF_S = 1.0


@dataclass(slots=True)
class ProcessorStats:
    """This instance's counters (the Prometheus ones are process-wide)."""

    batches: int = 0
    records: int = 0  # records of owned partitions taken into a batch
    loaded: int = 0  # records whose values ClickHouse took (bisection included)
    dead_letters: int = 0
    load_failures: int = 0
    bisections: int = 0  # batches that held a value ClickHouse refused
    replays: int = 0  # batches loaded again from the ranges a previous owner recorded
    commit_failures: int = 0
    revoked: int = 0  # partitions revoked from this instance (each revocation counted once it begins)
    unowned: int = 0  # records dropped because their partition was not (or no longer) ours


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    topic: str
    deadletter_topic: str
    consumer_group: str
    batch_max_records: int
    batch_wait_ms: int
    stuck_after_s: float = 120.0
    # Prefixed to insert deduplication tokens: an embedded broker starts its offsets at 0 again on
    # every start, and a token of an earlier run must not make ClickHouse drop a new batch.
    token_prefix: str = ""
    # The longest a recorded batch is gathered again before the processor gives up on it (the log was
    # truncated under it, say) and goes on with ordinary batches.
    replay_timeout_s: float = 60.0


@dataclass(slots=True)
class _Batch:
    """Records of owned partitions, their values as ClickHouse gets them, and their offset ranges."""

    ranges: Ranges
    records: list[ConsumerRecord]
    token: str
    recorded: bool = False  # the ranges are in processor_batches
    loaded: bool = False
    rejected: list[Rejected] = field(default_factory=list)


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
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.store = store
        self.config = config
        self.lock = asyncio.Lock()
        self.stats = ProcessorStats()
        self._owned: set[int] = set()
        # Per owned partition, the batch a previous owner recorded and may not have loaded: loaded
        # again, exactly, before anything else of these partitions.
        self._recorded: dict[int, Ranges] = {}
        self._pending: _Batch | None = None  # a batch whose load failed: retried as it is
        self._committed: dict[int, int] = {}
        # Revocations are numbered; a partition maps to the number of its latest one. A batch notes the
        # number when getmany returns, so it can tell records fetched before a revocation (stale).
        self._revocations = 0
        self._revoked_at: dict[int, int] = {}
        self.stall = StallDetector(config.stuck_after_s)

    def subscribe(self) -> None:
        self.consumer.subscribe([self.config.topic], listener=_Rebalance(self))

    def drained(self, records: int) -> bool:
        """Took at least ``records`` records into batches and loaded every batch it took."""
        return self.stats.records >= records and self._pending is None

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set; a batch whose load failed gets one more try."""
        while not stop.is_set():
            await self.run_once()
        await self.flush()

    async def flush(self) -> None:
        """Load and commit the batch whose load failed, if any."""
        async with self.lock:
            if self._pending is not None:
                await self._load_and_commit()

    async def run_once(self) -> int:
        """One step: retry a failed load, load a recorded batch again, or fetch and load a batch.
        Returns the records taken into a new batch."""
        if self._pending is not None:
            async with self.lock:
                await self._load_and_commit()
            return 0
        if self._recorded:
            return await self._replay()
        fetched_at = self._revocations
        fetched = await self._fill(fetched_at)
        async with self.lock:
            owned = self._sort_out(fetched, fetched_at)
            if not owned:
                return 0
            batch = self._pending = self._batch(owned)
            await self._load_and_commit()
        return len(batch.records)

    async def _fill(self, fetched_at: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Records until ``batch_max_records`` or ``batch_wait_ms`` from the first fetch: one getmany
        returns what the fetcher holds (a few thousand), and every insert pays the views' fixed cost, so
        fuller batches load faster. Fetching stops at a revocation: what a later getmany returned may
        belong to a new assignment that ``fetched_at`` would wrongly call stale, so those records go
        back (seek) to be read again, and the batch is what came before."""
        most, wait_s = self.config.batch_max_records, self.config.batch_wait_ms / 1000
        fetched: dict[TopicPartition, list[ConsumerRecord]] = await self.consumer.getmany(
            timeout_ms=self.config.batch_wait_ms, max_records=most
        )
        count = sum(map(len, fetched.values()))
        deadline = time.monotonic() + wait_s
        while 0 < count < most and self._revocations == fetched_at:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                break
            more = await self.consumer.getmany(timeout_ms=left_ms, max_records=most - count)
            if self._revocations != fetched_at:
                assigned = self.consumer.assignment()
                for tp, records in more.items():
                    if records and tp in assigned:
                        self.consumer.seek(tp, records[0].offset)
                break
            for tp, records in more.items():
                fetched.setdefault(tp, []).extend(records)
                count += len(records)
            if not more:
                break
        return fetched

    def _sort_out(
        self, fetched: dict[TopicPartition, list[ConsumerRecord]], fetched_at: int
    ) -> dict[int, list[ConsumerRecord]]:
        """The fetched records of partitions this processor owns; the others are dropped. getmany
        returns only partitions assigned at the time, so a fetched partition is:

        - revoked since the fetch (``fetched_at``): the records belong to a finished assignment. Its
          release committed no further than them, and the partition's next owner (this processor too,
          if it got the partition back) resumes from the commit: dropped.
        - adopted, still assigned, no recorded batch waiting: accepted.
        - assigned, not revoked since, but its ``adopt`` not done yet (aiokafka fetches as soon as it
          has the assignment and runs ``adopt`` alongside), or a recorded batch of it waiting: the
          records are the next ones of the partition, so its position goes back to the first of them,
          to read them again once adopted (or in the recorded batch).
        - anything else (not assigned): dropped; the owner reads them from its commit.
        """
        assigned = {tp.partition for tp in self.consumer.assignment() if tp.topic == self.config.topic}
        owned: dict[int, list[ConsumerRecord]] = {}
        dropped = 0
        for tp, records in fetched.items():
            partition = tp.partition
            if not records:
                continue
            if self._revoked_at.get(partition, 0) > fetched_at or partition not in assigned:
                dropped += len(records)
            elif partition in self._owned and partition not in self._recorded:
                owned[partition] = records
            else:
                dropped += len(records)
                self.consumer.seek(tp, records[0].offset)
                log.info(
                    "partition %d not ready: its records are read again from %d", partition, records[0].offset
                )
        if dropped:
            self.stats.unowned += dropped
            log.info("dropped %d records of partitions not owned", dropped)
        return owned

    def _batch(self, owned: dict[int, list[ConsumerRecord]]) -> _Batch:
        ranges = {p: (records[0].offset, records[-1].offset + 1) for p, records in owned.items()}
        records = [r for p in sorted(owned) for r in owned[p]]
        self.stats.records += len(records)
        metrics.RECORDS.inc(len(records))
        return _Batch(ranges, records, self._token(ranges))

    @property
    def _log_name(self) -> str:
        """The topic as the embedded broker's incarnation knows it: a new broker's offsets start at 0
        again, so neither tokens nor recorded batches of an earlier one may apply to it."""
        return self.config.token_prefix + self.config.topic

    def _token(self, ranges: Ranges) -> str:
        return dedup_token(self._log_name, ranges)

    async def _replay(self) -> int:
        """Gather exactly the batch a previous owner recorded (all its partitions owned here), load it
        under its token and commit. If some of its partitions are owned elsewhere, it cannot be formed
        again: the ranges are forgotten and the partitions go on with ordinary batches."""
        partition = min(self._recorded)
        ranges = self._recorded[partition]
        if not set(ranges) <= self._owned:
            log.warning(
                "recorded batch %s spans partitions owned elsewhere: loaded as ordinary batches", ranges
            )
            for p in ranges:
                self._recorded.pop(p, None)
            return 0
        fetched_at = self._revocations
        records = await self._gather(ranges, fetched_at)
        async with self.lock:
            if any(self._revoked_at.get(p, 0) > fetched_at for p in ranges):
                return 0  # revoked meanwhile: the next owner reads the recorded batch
            if records is None:
                # Its records did not all come (the log was cut under it, say): read the partitions
                # again from their starts, as ordinary batches.
                log.warning("recorded batch %s could not be gathered: loaded as ordinary batches", ranges)
                for p, (start, _) in ranges.items():
                    self._recorded.pop(p, None)
                    self.consumer.seek(TopicPartition(self.config.topic, p), start)
                return 0
            for p in ranges:
                self._recorded.pop(p, None)
            batch = _Batch(ranges, [r for p in sorted(records) for r in records[p]], self._token(ranges))
            batch.recorded = True
            self.stats.records += len(batch.records)
            self.stats.replays += 1
            metrics.RECORDS.inc(len(batch.records))
            log.info("loading again the batch recorded by a previous owner: %s", ranges)
            self._pending = batch
            await self._load_and_commit()
            return len(batch.records)

    async def _gather(self, ranges: Ranges, fetched_at: int) -> dict[int, list[ConsumerRecord]] | None:
        """The records of ``ranges``, fetched from those partitions only; None if one of them was
        revoked meanwhile or the records did not come (bounded by ``replay_timeout_s``)."""
        got: dict[int, list[ConsumerRecord]] = {p: [] for p in ranges}
        topic = self.config.topic
        deadline = time.monotonic() + self.config.replay_timeout_s
        while True:
            missing = [
                TopicPartition(topic, p)
                for p, (_, end) in ranges.items()
                if (got[p][-1].offset + 1 if got[p] else ranges[p][0]) < end
            ]
            if not missing:
                return got
            if any(self._revoked_at.get(p, 0) > fetched_at for p in ranges) or time.monotonic() > deadline:
                return None
            fetched = await self.consumer.getmany(
                *missing, timeout_ms=self.config.batch_wait_ms, max_records=self.config.batch_max_records
            )
            for tp, records in fetched.items():
                end = ranges[tp.partition][1]
                taken = [r for r in records if r.offset < end]
                got[tp.partition].extend(taken)
                if len(taken) < len(records):  # past the recorded end: those come in the next batch
                    self.consumer.seek(tp, end)

    async def _load_and_commit(self) -> None:
        """Record the batch's ranges, load it (bisecting on refused input), dead-letter the refused
        records, then commit. Any failure leaves the batch pending, to be retried as it is."""
        batch = self._pending
        assert batch is not None
        started = time.perf_counter()
        try:
            if not batch.recorded:
                # Before the insert, so that whoever reads the partitions next loads exactly this batch
                # again: same ranges, same token.
                config = self.config
                await asyncio.to_thread(
                    recorded.record, self.store, config.consumer_group, self._log_name, batch.ranges
                )
                batch.recorded = True
            if not batch.loaded:
                # Awaited before the next fetch, not beside it: with one core for the drain and an
                # embedded engine, overlapping them gained nothing (docs/performance.md#hot-path-choices).
                values = [r.value or b"" for r in batch.records]
                batch.rejected = await asyncio.to_thread(load_or_bisect, self.store, values, batch.token)
                batch.loaded = True
            if batch.rejected:
                await self._dead_letter_all(batch)
        except Exception:
            self.stats.load_failures += 1
            metrics.LOAD_FAILURES.inc()
            log.exception("load of %d records failed; retrying in %.1fs", len(batch.records), RETRY_BACKOFF_S)
            await asyncio.sleep(RETRY_BACKOFF_S)
            return
        self._pending = None
        metrics.LOAD_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_EVENTS.observe(len(batch.records))
        rejected = len(batch.rejected)
        self.stats.batches += 1
        self.stats.loaded += len(batch.records) - rejected
        self.stats.dead_letters += rejected
        self.stats.bisections += rejected > 0
        metrics.LOADED.inc(len(batch.records) - rejected)
        metrics.DEAD_LETTERS.inc(rejected)
        await self._commit(batch.ranges)

    async def _commit(self, ranges: Ranges) -> None:
        """Commit each loaded partition's next offset, for the owned partitions the consumer still holds
        (a commit naming a partition it does not hold fails as a whole, and would stall the others)."""
        assigned = self.consumer.assignment()
        topic = self.config.topic
        offsets = {
            TopicPartition(topic, p): end
            for p, (_, end) in ranges.items()
            if p in self._owned and TopicPartition(topic, p) in assigned
        }
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            # The group moved on (rebalance, expired member): what was loaded stays loaded, and
            # whoever owns the partitions next loads the recorded batch again (same token).
            self.stats.commit_failures += 1
            metrics.COMMIT_FAILURES.inc()
            log.warning("commit of %s failed (%s); the next owner replays from the last commit", offsets, exc)
            return
        self._committed.update({tp.partition: offset for tp, offset in offsets.items()})

    async def _dead_letter_all(self, batch: _Batch) -> None:
        """Dead letters of every refused record, acknowledged before the commit passes them."""
        topic = self.config.deadletter_topic
        sent = []
        for rejected in batch.rejected:
            record = batch.records[rejected.index]
            value = self._letter(record, rejected.reason)
            sent.append(await self.producer.send(topic, key=record.key, value=value))
        await asyncio.gather(*sent)

    def _letter(self, record: ConsumerRecord, reason: str) -> bytes:
        about = {
            "stage": "processor",
            "reason": reason,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
        }
        raw = record.value or b""
        room = value_room(self.producer, record.key)
        return dead_letter(about, "value", raw.decode("utf-8", "replace"), room, size=len(raw))

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
        wait for the batch in flight, give a failed one a last try, and forget the partitions. If that
        load fails, nothing of theirs is committed past its recorded ranges, and the next owner loads
        the recorded batch again.

        Numbered before waiting for the lock: a batch fetched before then drops what it fetched of
        them and has not taken into a batch yet (its commit stays below those records), so each record
        is loaded by one owner, and the next owner reads the rest from the commit."""
        self._revocations += 1
        for partition in partitions:
            self._revoked_at[partition] = self._revocations
        self.stats.revoked += len(partitions)
        async with self.lock:
            try:
                if self._pending is not None and set(self._pending.ranges) & partitions:
                    await self._load_and_commit()
            finally:  # forgotten even if the load or the commit raised: the next owner replays them
                batch = self._pending
                if batch is not None and set(batch.ranges) & partitions:
                    self._pending = None
                    for p, (start, _) in batch.ranges.items():  # kept ones: read again from the batch
                        if p not in partitions:
                            self.consumer.seek(TopicPartition(self.config.topic, p), start)
                self._owned -= partitions
                for partition in partitions:
                    self._recorded.pop(partition, None)
                    self._committed.pop(partition, None)
                self.stall.forget(partitions)

    async def adopt(self, assigned: list[TopicPartition]) -> None:
        """New partitions: a batch recorded for them that starts at their commit (its insert may have
        landed) is loaded again first, exactly (``_replay``).

        Not under the lock: aiokafka does not heartbeat during this callback, so it must not wait for a
        batch. Ownership begins at once after the awaits, and until then a batch re-reads the records
        it fetched of these partitions (``_sort_out``)."""
        mine = [tp for tp in assigned if tp.topic == self.config.topic]
        try:
            # One request for all of them (the public committed() asks partition by partition).
            offsets = await self.consumer._coordinator.fetch_committed_offsets(mine)
            committed = {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            found = await asyncio.to_thread(
                recorded.recorded,
                self.store,
                self.config.consumer_group,
                self._log_name,
                committed,
                [tp.partition for tp in mine],
            )
        except Exception:
            # Without them a batch that landed uncommitted may be loaded again under another token: its
            # events are merged once all the same, and copies in email_events fold at merges.
            log.warning("could not read recorded batches; going on without them", exc_info=True)
            found = {}
        for tp in mine:
            if tp.partition in found:
                self._recorded[tp.partition] = found[tp.partition]
            self._owned.add(tp.partition)
            self._committed.pop(tp.partition, None)


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
