"""Generated traffic straight onto the status topic, and the loaded tables compared with its ground truth.

The expected tables come from ``simulator.traffic.Truth`` (what the generator meant), never from the
merge code under test. Shared by the in-process tests and by ``dump_tables`` (run in a subprocess when
the chDB directory belongs to another process).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from clickhouse_connect.driver.client import Client

from adapters.clickhouse import ClickHouseStore
from adapters.publisher import Record, encode, send_batched
from ingest.fastpath import received_stamp, sendgrid_record, twilio_record
from mailpulse.runtime import processor
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from processors.status_processor import StatusProcessor
from schemas.event import CanonicalEvent
from schemas.sendgrid import parse_sendgrid_event
from schemas.status import EmailStatus, precedence
from schemas.twilio import parse_cloud_event
from simulator.traffic import SENDGRID, TWILIO, Payload, Traffic, Truth

# The *_at columns of email_state, in storage.tables order, with the status each one records.
STATUS_TIME_COLUMNS: tuple[tuple[str, EmailStatus], ...] = tuple(
    (f"{s.value.lower()}_at", s)
    for s in (
        EmailStatus.SCHEDULED, EmailStatus.QUEUED, EmailStatus.SENT, EmailStatus.DELIVERED,
        EmailStatus.UNDELIVERED, EmailStatus.OPENED, EmailStatus.FAILED, EmailStatus.CANCELED,
        EmailStatus.INBOUND,
    )
)  # fmt: skip
# One messages row as compared: status, provider, recipient, the *_at times (epoch ms or None),
# open_count, machine_open_count, click_count, deferred_count, event_count, first_event_at,
# last_event_at.
MessageRow = tuple[Any, ...]


def received_at(traffic: Traffic) -> datetime:
    """A fixed ingest time after every generated event (event times span hours, not days)."""
    return traffic.start + timedelta(days=2)


def arrival_order(traffic: Traffic) -> list[tuple[str, Payload]]:
    """Both providers' deliveries on one topic: each stream keeps its (shuffled) order and the two are
    interleaved in proportion, so both advance through event time together."""
    sendgrid = [p for batch in traffic.sendgrid_batches for p in batch]
    twilio = [p for batch in traffic.twilio_batches for p in batch]
    out: list[tuple[str, Payload]] = []
    i = j = 0
    while i < len(sendgrid) or j < len(twilio):
        if j >= len(twilio) or (i < len(sendgrid) and i * len(twilio) <= j * len(sendgrid)):
            out.append((SENDGRID, sendgrid[i]))
            i += 1
        else:
            out.append((TWILIO, twilio[j]))
            j += 1
    return out


def canonical_events(traffic: Traffic) -> list[CanonicalEvent]:
    """Every delivery parsed by its provider's parser, in arrival order (duplicates included)."""
    at = received_at(traffic)
    return [
        parse_sendgrid_event(raw, at) if provider == SENDGRID else parse_cloud_event(raw, at)
        for provider, raw in arrival_order(traffic)
    ]


def traffic_records(traffic: Traffic) -> list[Record]:
    """Every delivery as ingest publishes it with plain privacy, in arrival order (duplicates included):
    the fast path's record, else the canonical parser's (the same bytes: tests/ingest/test_fastpath.py).
    The fast path spares the pydantic models most of their cost on 100,000 deliveries."""
    at = received_stamp(received_at(traffic))
    records: list[Record] = []
    for provider, raw in arrival_order(traffic):
        sendgrid = provider == SENDGRID
        record = sendgrid_record(raw, at) if sendgrid else twilio_record(raw, at)
        if record is None:
            event = parse_sendgrid_event(raw, at) if sendgrid else parse_cloud_event(raw, at)
            record = (event.message_id.encode(), encode(event))
        records.append(record)
    return records


async def produce(bootstrap: str, topic: str, records: Sequence[Record]) -> dict[int, int]:
    """Publish as ingest does (key = message id, acks=all; Tansu has no idempotent producer), in one
    record batch per partition (more when full) where ``send`` would put each key, in order.

    Returns each partition's end offset (last acknowledged offset + 1). Taken from the acks because
    Tansu's ListOffsets(latest) answers the base offset of the partition's last record batch + 1, not
    the end of the log, once batches hold more than one record."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=20,
        max_batch_size=512 * 1024,
        request_timeout_ms=30_000,
    )
    await producer.start()
    try:
        async with asyncio.timeout(120):
            acks = await asyncio.gather(*await send_batched(producer, topic, records))
    finally:
        await producer.stop()
    end: dict[int, int] = {}
    for ack in acks:  # each batch's last record
        end[ack.partition] = max(end.get(ack.partition, 0), ack.offset + 1)
    return end


class GroupProgress:
    """A consumer group's committed offsets on one topic (a read-only observer of the group)."""

    def __init__(self, bootstrap: str, group: str, topic: str, partitions: int) -> None:
        self.group = group
        self.partitions = [TopicPartition(topic, p) for p in range(partitions)]
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)

    async def __aenter__(self) -> GroupProgress:
        await self.admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.admin.close()

    async def committed(self) -> dict[int, int]:
        offsets = await self.admin.list_consumer_group_offsets(self.group, partitions=self.partitions)
        return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def wait_caught_up(
        self, end: Mapping[int, int], timeout_s: float, alive: Callable[[], None] = lambda: None
    ) -> dict[int, int]:
        """Until the group has committed every partition up to ``end``: the processor commits a
        partition only up to its oldest event still waiting, so then everything is loaded.
        ``alive`` raises when the consumers died, to fail fast rather than at the timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            alive()
            committed = await self.committed()
            if all(committed.get(p, 0) >= offset for p, offset in end.items()):
                assert committed == dict(end), f"committed {committed} beyond the end {end}"
                return committed
            if time.monotonic() > deadline:
                raise TimeoutError(f"group {self.group} committed {committed} of {end} in {timeout_s}s")
            await asyncio.sleep(0.1)


async def publish(settings: Settings, traffic: Traffic) -> dict[int, int]:
    """Every delivery of ``traffic`` on the status topic; returns the partitions' end offsets."""
    assert settings.kafka_bootstrap is not None
    await ensure_topics(settings.kafka_bootstrap, settings.topics, settings.partitions)
    end = await produce(settings.kafka_bootstrap, settings.status_topic, traffic_records(traffic))
    assert sum(end.values()) == traffic.deliveries
    return end


def progress(settings: Settings) -> GroupProgress:
    assert settings.kafka_bootstrap is not None
    return GroupProgress(
        settings.kafka_bootstrap, settings.consumer_group, settings.status_topic, settings.partitions
    )


@dataclass(slots=True)
class Running:
    """A processor whose ``run`` loop is a background task."""

    proc: StatusProcessor
    task: asyncio.Task[None]

    def check(self) -> None:
        """Raise if the loop ended (with its exception, if it failed)."""
        if self.task.done():
            self.task.result()
            raise RuntimeError("the processor loop stopped")


@contextlib.asynccontextmanager
async def consuming(settings: Settings, store: ClickHouseStore) -> AsyncIterator[Running]:
    """A processor running in the background until the context exits (then flushed and committed)."""
    assert settings.kafka_bootstrap is not None
    async with processor(settings, settings.kafka_bootstrap, store) as proc:
        stop = asyncio.Event()
        running = Running(proc, asyncio.create_task(proc.run(stop)))
        try:
            yield running
        finally:
            stop.set()
            async with asyncio.timeout(30):
                await running.task


async def read_all(bootstrap: str, topic: str, timeout_s: float) -> list[ConsumerRecord]:
    """Every record of ``topic``, up to the high watermarks the fetches report (Tansu's are right in
    fetch responses, unlike its ListOffsets answers)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while True:
            for batch in (await consumer.getmany(timeout_ms=200, max_records=50_000)).values():
                records.extend(batch)
            assigned = consumer.assignment()
            marks = [consumer.highwater(tp) for tp in assigned]
            if assigned and None not in marks:
                positions = [await consumer.position(tp) for tp in assigned]
                if all(p >= h for p, h in zip(positions, marks, strict=True)):
                    return records
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(records)} records of {topic} in {timeout_s}s")
    finally:
        await consumer.stop()


def _ms(value: datetime | None) -> int | None:
    return None if value is None else round(value.timestamp() * 1000)


@dataclass(slots=True)
class Tables:
    """What the analyst-facing views hold (times as epoch milliseconds), plus raw row counts."""

    messages: dict[str, MessageRow] = field(default_factory=dict)
    events: list[tuple[str, str, int]] = field(default_factory=list)  # message_id, label, occurred_at
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps({"messages": self.messages, "events": self.events, "counts": self.counts})

    @classmethod
    def from_json(cls, data: bytes) -> Tables:
        raw = orjson.loads(data)
        return cls(
            messages={k: tuple(v) for k, v in raw["messages"].items()},
            events=[(m, label, at) for m, label, at in raw["events"]],
            counts=raw["counts"],
        )


def read_tables(client: Client, database: str) -> Tables:
    """Read the ``messages`` and ``events`` views (deduplicated, no FINAL needed) and row counts (the
    raw ``email_events`` keeps copies of an event loaded in different inserts until a merge)."""
    db = database
    times = ", ".join(f"toUnixTimestamp64Milli({column})" for column, _ in STATUS_TIME_COLUMNS)
    tables = Tables()
    for row in client.query(
        f"SELECT message_id, status, provider, recipient, {times}, open_count, machine_open_count,"
        " click_count, deferred_count, event_count, toUnixTimestamp64Milli(first_event_at),"
        f" toUnixTimestamp64Milli(last_event_at) FROM {db}.messages"
    ).result_rows:
        if row[0] in tables.messages:
            raise AssertionError(f"messages view has two rows for {row[0]}")
        tables.messages[row[0]] = tuple(row[1:])
    tables.events = [
        (m, label, int(at))
        for m, label, at in client.query(
            f"SELECT message_id, if(status = '', raw_type, status), toUnixTimestamp64Milli(occurred_at)"
            f" FROM {db}.events"
        ).result_rows
    ]
    counts = {
        "email_events": f"SELECT count() FROM {db}.email_events",
        "events": f"SELECT count() FROM {db}.events",
        "transitions": f"SELECT count() FROM {db}.transitions",
        "late_transitions": f"SELECT countIf(late) FROM {db}.transitions",
    }
    tables.counts = {name: int(client.query(sql).result_rows[0][0]) for name, sql in counts.items()}
    return tables


def expected_message(truth: Truth) -> MessageRow:
    labels = Counter(label for label, _ in truth.events)
    times = [at for _, at in truth.events]
    return (
        truth.status.value,
        truth.provider,
        truth.recipient,
        *(_ms(truth.first_at.get(status)) for _, status in STATUS_TIME_COLUMNS),
        truth.opens,
        truth.machine_opens,
        labels["click"],
        labels["deferred"],
        len(truth.events),
        _ms(min(times)),
        _ms(max(times)),
    )


def distinct_events(truth: Mapping[str, Truth]) -> int:
    return sum(len(t.events) for t in truth.values())


def status_events(truth: Mapping[str, Truth]) -> int:
    """Distinct status events: each one is merged as new exactly once and yields one transition."""
    statuses = {s.value for s in EmailStatus}
    return sum(label in statuses for t in truth.values() for label, _ in t.events)


def mismatches(tables: Tables, truth: Mapping[str, Truth], limit: int = 5) -> list[str]:
    """Every way the tables differ from the ground truth (the first ``limit`` per kind); empty = equal."""
    problems: list[str] = []

    def report(kind: str, items: Sequence[str]) -> None:
        if items:
            problems.append(f"{len(items)} {kind}: {list(items[:limit])}")

    missing = sorted(set(truth) - set(tables.messages))
    extra = sorted(set(tables.messages) - set(truth))
    report("messages missing", missing)
    report("unexpected messages", extra)
    wrong = [
        f"{m}: got {tables.messages[m]} want {expected_message(t)}"
        for m, t in truth.items()
        if m in tables.messages and tables.messages[m] != expected_message(t)
    ]
    report("messages differ", wrong)
    got: defaultdict[str, Counter[tuple[str, int]]] = defaultdict(Counter)
    for message_id, label, at in tables.events:
        got[message_id][label, at] += 1
    differ = []
    for message_id, t in truth.items():
        want = Counter((label, round(at.timestamp() * 1000)) for label, at in t.events)
        have = got.pop(message_id, Counter())
        if have != want:
            differ.append(f"{message_id}: missing {want - have}, extra {have - want}")
    report("messages' events differ", differ)
    report("messages with events but no truth", sorted(got))
    distinct = distinct_events(truth)
    if tables.counts["events"] != distinct:
        problems.append(
            f"events has {tables.counts['events']} rows, want {distinct} (one per distinct event)"
        )
    return problems


def canonical_order_violations(transitions: Sequence[tuple[str, datetime, str, bool]]) -> list[str]:
    """Per message, its non-late transitions as published (message_id, occurred_at, status, late), in
    topic order, must follow canonical order: event time, then status precedence."""
    last: dict[str, tuple[datetime, int]] = {}
    bad = []
    for message_id, at, status, late in transitions:
        if late:
            continue
        key = (at, precedence(EmailStatus(status)))
        if message_id in last and key < last[message_id]:
            bad.append(f"{message_id}: {key} after {last[message_id]}")
        last[message_id] = key
    return bad
