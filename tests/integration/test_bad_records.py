"""Values ClickHouse refuses, among good neighbours in one batch: each refused record is dead-lettered
with its reason, every neighbour is loaded exactly once, and the partition is committed to its end.

One partition and one batch, so the bad records sit inside the batch the processor hands ClickHouse;
merges of email_events are stopped, so a neighbour loaded twice (by two halves of the bisection, say)
would stay visible as a second row.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from adapters.clickhouse import ClickHouseStore
from adapters.publisher import encode
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from schemas.event import EnvelopeV1
from simulator.traffic import generate
from tests.integration.groundtruth import (
    canonical_events,
    consuming,
    distinct_events,
    mismatches,
    progress,
    read_all,
    read_tables,
)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _changed(value: bytes, **change: object) -> bytes:
    fields = orjson.loads(value)
    fields.update(change)
    return orjson.dumps(fields)


def test_refused_values_are_dead_lettered_and_their_neighbours_loaded_once(
    settings: Settings, store: ClickHouseStore
) -> None:
    settings = settings.model_copy(update={"partitions": 1, "batch_max_records": 1000})
    traffic = generate(12, seed=99, duplicate_rate=0.0)
    events = canonical_events(traffic)
    assert distinct_events(traffic.truth) == len(events)  # no copies: one raw row per good record
    good = [encode(e) for e in events]
    template = good[0]
    bad = {
        "garbage": b"\x00\xff not json at all",
        "truncated": template[: len(template) // 2],
        "wrong type": _changed(template, occurred_at="not a time"),
        "unknown version": _changed(template, v=99),
    }
    # A record an older ingest left in Kafka (envelope v1) is upgraded and loaded, a broken one refused.
    older = EnvelopeV1(event=events[1]).model_dump_json().encode()
    broken_v1 = b'{"schema_version":1,"event":{"message_id":"x"}}'
    values: list[tuple[str | None, bytes]] = [(None, v) for v in good]
    for n, (name, value) in enumerate([*bad.items(), ("broken v1", broken_v1)]):
        values.insert(2 + 3 * n, (name, value))  # each between good neighbours
    values.insert(1, (None, older))
    store.client.command(f"SYSTEM STOP MERGES {store.database}.email_events")

    async def scenario() -> tuple[dict[str, int], list[Any], dict[int, int], int, int]:
        assert settings.kafka_bootstrap is not None
        await ensure_topics(settings.kafka_bootstrap, settings.topics, settings.partitions)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=False)
        await producer.start()
        try:
            acks = [await producer.send_and_wait(settings.status_topic, v, key=b"k") for _, v in values]
        finally:
            await producer.stop()
        offsets = {name: ack.offset for (name, _), ack in zip(values, acks, strict=True) if name}
        end = {0: acks[-1].offset + 1}
        async with progress(settings) as group, consuming(settings, store) as running:
            await group.wait_caught_up(end, 60.0, running.check)
            stats = running.proc.stats
        letters = await read_all(settings.kafka_bootstrap, settings.deadletter_topic, 30.0)
        return offsets, [orjson.loads(r.value) for r in letters], end, stats.loaded, stats.dead_letters

    offsets, letters, end, loaded, dead = asyncio.run(scenario())
    by_offset = {letter["offset"]: letter for letter in letters}
    assert sorted(by_offset) == sorted(offsets.values()), letters  # each refused record, once
    for name, offset in offsets.items():
        letter = by_offset[offset]
        assert letter["stage"] == "processor" and letter["partition"] == 0, letter
        assert letter["reason"], letter
        raw = dict(values)[name] if name != "garbage" else None
        if raw is not None:
            assert letter["value"] == raw.decode(), letter
    assert by_offset[offsets["unknown version"]]["reason"].startswith("unknown envelope version")
    assert by_offset[offsets["broken v1"]]["reason"].startswith("invalid envelope v1")
    assert "DateTime" in by_offset[offsets["wrong type"]]["reason"]
    assert (loaded, dead) == (len(good) + 1, len(offsets))
    tables = read_tables(store.client, store.database)
    assert mismatches(tables, traffic.truth) == []
    # Every good record once, the upgraded v1 copy of events[1] once more (merges are stopped).
    assert tables.counts["email_events"] == len(good) + 1
    assert end == {0: len(values)}
