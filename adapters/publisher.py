"""Kafka publishing of canonical events, for ingest and the poller (aiokafka, acks=all)."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.structs import RecordMetadata
from prometheus_client import Gauge

from adapters.batcher import Handoff, PartitionBatcher, last_record
from adapters.journal import Entry, Journal
from adapters.kafka import value_room
from adapters.partitioner import partition_for
from schemas.deadletter import dead_letter
from schemas.event import CanonicalEvent, envelope_json

Record = tuple[bytes, bytes]  # (key: the message id, value: the envelope JSON)

# Named for ingest, their first publisher; the poller's publisher counts in them too.
UNACKNOWLEDGED = Gauge(
    "mailpulse_ingest_unacknowledged_events",
    "Events handed to the Kafka producer and not yet acknowledged (the producer's queue depth)",
)
QUEUED_BYTES = Gauge(
    "mailpulse_ingest_queued_bytes",
    "Key and value bytes handed to the Kafka producer and not yet acknowledged or failed (capped)",
)


class PublishFailed(Exception):
    """Kafka did not acknowledge in time; the caller must not acknowledge its sender."""


class Overloaded(PublishFailed):
    """Refused before publishing anything: the bytes already waiting for Kafka are at the cap."""


class Publisher(Protocol):
    max_record_bytes: int  # the largest key plus value it can publish as one record

    async def publish(self, events: Sequence[CanonicalEvent], rejected: Sequence[Rejected]) -> None: ...

    async def publish_records(self, records: Sequence[Record], rejected: Sequence[Rejected]) -> None:
        """Like ``publish`` for events already encoded: (message id, ``encode(event)``) pairs."""
        ...

    async def unready(self) -> list[str]:
        """What keeps it from publishing now (empty: ready), e.g. Kafka not answering a metadata
        request in time."""
        ...


class Rejected:
    """An input element that failed validation, kept on the dead-letter topic with its reasons."""

    __slots__ = ("endpoint", "index", "payload", "problems")

    def __init__(self, endpoint: str, index: int, payload: object, problems: list[dict[str, str]]) -> None:
        self.endpoint = endpoint
        self.index = index
        self.payload = payload
        self.problems = problems

    def to_json(self, most_bytes: int) -> bytes:
        """The dead letter, its payload cut if the whole would exceed ``most_bytes`` (schemas.deadletter)."""
        about = {
            "stage": "ingest",
            "endpoint": self.endpoint,
            "index": self.index,
            "problems": self.problems,
            "at": datetime.now(UTC).isoformat(),
        }
        return dead_letter(about, "payload", self.payload, most_bytes)


def encode(event: CanonicalEvent) -> bytes:
    """The record value for ``event``: envelope v2 (schemas.event.envelope_json)."""
    return envelope_json(event)


async def send_batched(
    producer: AIOKafkaProducer, topic: str, records: Sequence[tuple[bytes | None, bytes]]
) -> list[asyncio.Future[Any]]:
    """Queue ``records`` as one record batch per partition (more when one fills up) instead of one
    ``send`` per record: 20,000 transitions cost a few futures, not 20,000. Keys land where ``send``
    puts them. Await the returned futures for the acknowledgements. For one caller with large sets
    (the processor): aiokafka queues a batch behind the partition's pending one, so many concurrent
    small callers would serialize. Each future resolves to the metadata of its batch's last record."""
    if not records:
        return []
    partitions = sorted(await producer.partitions_for(topic))
    batches: dict[int, list[Any]] = {}
    for key, value in records:
        partition = partition_for(key, partitions) if key is not None else random.choice(partitions)
        open_batches = batches.get(partition)
        if open_batches is None:  # not setdefault: its default argument would build a batch per record
            open_batches = batches[partition] = [producer.create_batch()]
        if open_batches[-1].append(key=key, value=value, timestamp=None) is None:
            open_batches.append(producer.create_batch())
            if open_batches[-1].append(key=key, value=value, timestamp=None) is None:
                raise MessageSizeTooLargeError(f"a record of {len(value)} bytes exceeds the batch size")
    return [
        last_record(await producer.send_batch(batch, topic, partition=partition), batch.record_count())
        for partition, open_batches in batches.items()
        for batch in open_batches
    ]


DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024

# Requests with fewer events send them one by one: the batcher's hand-off (a task, shared futures)
# costs more than a send for one event (bench: 4,400 -> 2,400 single-event requests/s through it).
COALESCE_MIN_EVENTS = 8


class KafkaPublisher:
    """Publishes events keyed by message id and waits for every acknowledgement (acks=all)."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        deadletter_topic: str,
        timeout_s: float,
        max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
        journal: Journal | None = None,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.deadletter_topic = deadletter_topic
        # Set when the broker keeps nothing across restarts: a request is then acknowledged only
        # once its records are on local disk too (adapters.journal).
        self.journal = journal
        self.max_record_bytes = value_room(producer)
        self.timeout_s = timeout_s
        # Events go into per-partition batches shared by concurrent requests (adapters.batcher): cheaper
        # than a send per record, and unlike a batch per request it never serializes requests
        # (docs/performance.md#hot-path-choices).
        self.batcher = PartitionBatcher(producer, topic)
        # Key and value bytes handed to the producer and not yet acknowledged or failed: a request
        # that would pass the cap is refused at once, so a stalled Kafka cannot grow memory unbounded.
        self.max_queued_bytes = max_queued_bytes
        self.queued_bytes = 0
        self._refused = 0  # size of the last request refused for the cap, none admitted since (0: none)
        self._held: dict[int, float] = {}  # publish -> when it was queued (monotonic), oldest first
        self._ids = itertools.count()

    async def publish(self, events: Sequence[CanonicalEvent], rejected: Sequence[Rejected] = ()) -> None:
        await self.publish_records([(e.message_id.encode(), encode(e)) for e in events], rejected)

    async def publish_records(self, records: Sequence[Record], rejected: Sequence[Rejected] = ()) -> None:
        # Dead letters are rare: one send each, each cut to what the producer may send.
        room = value_room(self.producer)
        letters = [r.to_json(room) for r in rejected]
        size = sum(len(key) + len(value) for key, value in records) + sum(map(len, letters))
        # Alone, a request passes even over the cap: else one that large would be refused forever.
        if self.queued_bytes and self.queued_bytes + size > self.max_queued_bytes:
            self._refused = size
            raise Overloaded(
                f"{self.queued_bytes} bytes wait for Kafka's acknowledgement; {size} more would pass "
                f"the cap of {self.max_queued_bytes}"
            )
        self._refused = 0
        hold = next(self._ids)
        self._held[hold] = time.monotonic()
        self.queued_bytes += size
        QUEUED_BYTES.inc(size)
        queued = len(records) + len(rejected)
        UNACKNOWLEDGED.inc(queued)
        handoffs: dict[Handoff, None] = {}
        sent: list[asyncio.Future[Any]] = []
        ticket = None
        if self.journal is not None:
            entries: list[Entry] = [(self.topic, key, value) for key, value in records]
            entries += [(self.deadletter_topic, None, letter) for letter in letters]
            ticket = self.journal.append(entries)
        try:
            async with asyncio.timeout(self.timeout_s):
                pending: list[Any] = []
                if records:
                    partitions = await self.batcher.partitions()
                    coalesce = len(records) >= COALESCE_MIN_EVENTS
                    for key, value in records:
                        partition = partition_for(key, partitions)
                        if coalesce:
                            handoffs[self.batcher.append(partition, key, value)] = None
                        else:
                            sent.append(
                                await self.producer.send(self.topic, value, key=key, partition=partition)
                            )
                    self.batcher.flush()
                for letter in letters:
                    sent.append(await self.producer.send(self.deadletter_topic, value=letter))
                # Shielded: a request's timeout (a cancellation) must not cancel a delivery future,
                # the batch the others wait for, nor end the count of bytes the producer still holds.
                pending += map(asyncio.shield, sent)
                for handoff in handoffs:
                    pending.append(asyncio.shield(await asyncio.shield(handoff)))
                if ticket is not None:
                    acks = await asyncio.gather(*pending, ticket.synced)
                    assert self.journal is not None
                    self.journal.acknowledged(ticket, positions(acks))
                elif len(pending) == 1:  # a single-event callback: no gathering future around it
                    await pending[0]
                else:
                    await asyncio.gather(*pending)
        except (TimeoutError, KafkaError, OSError) as exc:
            raise PublishFailed(f"Kafka (or the journal) did not acknowledge: {exc!r}") from exc
        finally:
            UNACKNOWLEDGED.dec(queued)
            if ticket is not None:
                assert self.journal is not None
                self.journal.release(ticket)
            if handoffs:  # records appended before a failure must not wait for another request's flush
                self.batcher.flush()
            self._release_when_settled(hold, size, list(handoffs), sent)

    def _release_when_settled(
        self, hold: int, size: int, handoffs: list[Handoff], sent: list[asyncio.Future[Any]]
    ) -> None:
        """Count ``size`` bytes as queued until every batch holding them is acknowledged or failed:
        a request that timed out leaves its records in the producer, still taking memory."""
        waiting = len(handoffs) + len(sent)

        def settled(future: asyncio.Future[Any] | None = None) -> None:
            nonlocal waiting
            if future is not None and not future.cancelled():
                future.exception()  # a request that gave up never looks: no "never retrieved" noise
            waiting -= 1
            if waiting <= 0:
                self.queued_bytes -= size
                QUEUED_BYTES.dec(size)
                del self._held[hold]

        def handed(handoff: Handoff) -> None:
            if handoff.cancelled() or handoff.exception() is not None:
                settled()
            else:
                handoff.result().add_done_callback(settled)  # the batch's delivery

        if not waiting:
            waiting = 1
            settled()
        for handoff in handoffs:
            handoff.add_done_callback(handed)
        for future in sent:
            future.add_done_callback(settled)

    async def unready(self) -> list[str]:
        problems = []
        if self._held:
            waited = time.monotonic() - next(iter(self._held.values()))
            if waited > self.timeout_s:
                problems.append(f"Kafka acknowledgements stall: the oldest publish has waited {waited:.0f} s")
        # Reported until that refused request would fit: ready again without needing new traffic.
        if self._refused and self.queued_bytes + self._refused > self.max_queued_bytes:
            problems.append(
                f"{self.queued_bytes} bytes wait for Kafka's acknowledgement, at the cap of "
                f"{self.max_queued_bytes}: requests are refused"
            )
        try:
            async with asyncio.timeout(self.timeout_s):
                if not await self.producer.client.force_metadata_update():
                    problems.append("Kafka unreachable")
        except (TimeoutError, KafkaError):
            problems.append("Kafka unreachable")
        return problems


def positions(acks: Sequence[Any]) -> dict[str, dict[int, int]]:
    """Topic -> partition -> highest offset among the acknowledgements (RecordMetadata; others,
    such as a journal's None, are skipped)."""
    out: dict[str, dict[int, int]] = {}
    for ack in acks:
        if isinstance(ack, RecordMetadata):
            offsets = out.setdefault(ack.topic, {})
            if ack.offset > offsets.get(ack.partition, -1):
                offsets[ack.partition] = ack.offset
    return out


async def publish_tracked(producer: AIOKafkaProducer, entries: Iterable[Entry]) -> dict[str, dict[int, int]]:
    """Publish ``entries`` (topic, key, value) where ``send`` would put them, in record batches, and
    return where they landed: topic -> partition -> last offset. Waits for every acknowledgement."""
    by_topic: dict[str, list[tuple[bytes | None, bytes]]] = {}
    for topic, key, value in entries:
        by_topic.setdefault(topic, []).append((key, value))
    acks = []
    for topic, records in by_topic.items():
        for future in await send_batched(producer, topic, records):
            acks.append(future)
    return positions(await asyncio.gather(*acks))


def create_producer(bootstrap: str, enable_idempotence: bool) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=enable_idempotence,
        # No lingering: a request's events are queued without yielding, so they batch anyway, and
        # sends queued while a produce request is in flight go out together in the next one; a linger
        # would hold every single-event request that long (docs/performance.md#hot-path-choices).
        linger_ms=0,
        max_batch_size=256 * 1024,  # fewer, larger produce requests
        request_timeout_ms=10_000,
    )
