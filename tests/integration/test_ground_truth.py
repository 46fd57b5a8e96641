"""Generated traffic through the real broker into chDB equals the generator's ground truth, row for row.

Traffic is produced straight to the status topic (parsed by the provider parsers and encoded as ingest
does, keyed by message id) rather than posted over HTTP: the same records in a fraction of the time.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import orjson
import pytest

from mailpulse.settings import Settings
from mailpulse.traffic import generate
from processors.consumer import ProcessorStats
from processors.store import ClickHouseStore
from tests.integration.groundtruth import (
    canonical_order_violations,
    consuming,
    distinct_events,
    mismatches,
    progress,
    publish,
    read_all,
    read_tables,
    status_events,
)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

MESSAGES = 28_000  # about 106,000 deliveries of 85,000 distinct events
DUPLICATE_RATE = 0.2
LOAD_TIMEOUT_S = 120.0
# Event-time lateness of the reorder window. The generated streams arrive up to 30 s late (SendGrid
# batches) and are jittered by up to 300 places (minutes of event time at these rates), so 0.5-1 s
# would make ~95% of the events late and leave few on-time transitions to check the order of; 60 s
# leaves a bit more than half of them late.
LATENESS_MS = 60_000

# (message_id, occurred_at, status, late) of a record on the transitions topic, in topic order.
Published = tuple[str, datetime, str, bool]


def test_generated_traffic_equals_ground_truth(settings: Settings, store: ClickHouseStore) -> None:
    settings = settings.model_copy(
        update={
            "partitions": 6,
            "reorder_lateness_ms": LATENESS_MS,
            "reorder_max_wait_ms": 5000,
            # Records are decoded on the event loop: keep a batch's decoding well inside the 2 s
            # session timeout, so that no missed heartbeat makes the group rebalance and re-read.
            "batch_max_records": 10_000,
        }
    )
    traffic = generate(MESSAGES, seed=2026, duplicate_rate=DUPLICATE_RATE)
    distinct, statuses = distinct_events(traffic.truth), status_events(traffic.truth)
    assert len(traffic.truth) >= 20_000
    assert traffic.deliveries >= 100_000
    assert (traffic.deliveries - distinct) / traffic.deliveries >= 0.10
    timings: dict[str, float] = {}

    async def scenario() -> tuple[ProcessorStats, list[Published]]:
        started = time.perf_counter()
        end = await publish(settings, traffic)
        timings["produce"] = time.perf_counter() - started
        async with progress(settings) as group, consuming(settings, store) as running:
            await group.wait_caught_up(end, LOAD_TIMEOUT_S, running.check)
        timings["load"] = time.perf_counter() - started - timings["produce"]
        assert settings.kafka_bootstrap is not None
        records = await read_all(settings.kafka_bootstrap, settings.transitions_topic, 30.0)
        published = []
        for record in records:
            t = orjson.loads(record.value)
            published.append(
                (t["message_id"], datetime.fromisoformat(t["occurred_at"]), t["status"], t["late"])
            )
        return running.proc.stats, published

    stats, transitions = asyncio.run(scenario())
    on_time = sum(not late for *_, late in transitions)
    print(
        f"\n{traffic.deliveries} records, {distinct} distinct events; {timings}; {stats}; {on_time} on time"
    )
    tables = read_tables(store.client, store.database)
    assert mismatches(tables, traffic.truth) == []
    # One consumer and no restart: every record read once, every distinct event loaded once.
    assert stats.records == traffic.deliveries
    assert stats.loaded_events == distinct
    assert stats.duplicates == traffic.deliveries - distinct
    assert stats.dead_letters == stats.load_failures == 0
    # Some events arrived behind the window: merged anyway (the tables are right) and flagged late.
    assert 0 < stats.late < traffic.deliveries
    assert 0 < tables.counts["late_transitions"] < statuses
    # One transition per distinct status event; the on-time ones leave in canonical order.
    assert tables.counts["transitions"] == tables.counts["email_transitions"] == statuses
    assert stats.transitions == len(transitions) == statuses
    assert on_time > statuses // 10
    assert canonical_order_violations(transitions) == []
