"""Generated traffic through the real broker into chDB equals the generator's ground truth, row for row.

Traffic is produced straight to the status topic (parsed by the provider parsers and encoded as ingest
does, keyed by message id) rather than posted over HTTP: the same records in a fraction of the time.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from adapters.clickhouse import ClickHouseStore
from mailpulse.settings import Settings
from processors.status_processor import ProcessorStats
from simulator.traffic import generate
from tests.integration.groundtruth import (
    consuming,
    distinct_events,
    mismatches,
    progress,
    publish,
    read_tables,
    status_events,
)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

MESSAGES = 28_000  # about 106,000 deliveries of 85,000 distinct events
DUPLICATE_RATE = 0.2
LOAD_TIMEOUT_S = 120.0


def test_generated_traffic_equals_ground_truth(settings: Settings, store: ClickHouseStore) -> None:
    settings = settings.model_copy(update={"partitions": 6, "batch_max_records": 10_000})
    traffic = generate(MESSAGES, seed=2026, duplicate_rate=DUPLICATE_RATE)
    distinct, statuses = distinct_events(traffic.truth), status_events(traffic.truth)
    assert len(traffic.truth) >= 20_000
    assert traffic.deliveries >= 100_000
    assert (traffic.deliveries - distinct) / traffic.deliveries >= 0.10
    timings: dict[str, float] = {}

    async def scenario() -> ProcessorStats:
        started = time.perf_counter()
        end = await publish(settings, traffic)
        timings["produce"] = time.perf_counter() - started
        async with progress(settings) as group, consuming(settings, store) as running:
            await group.wait_caught_up(end, LOAD_TIMEOUT_S, running.check)
        timings["load"] = time.perf_counter() - started - timings["produce"]
        return running.proc.stats

    stats = asyncio.run(scenario())
    print(f"\n{traffic.deliveries} records, {distinct} distinct events; {timings}; {stats}")
    tables = read_tables(store.client, store.database)
    # Copies, out-of-order arrivals and duplicates across batches are merged by ClickHouse: the
    # events and messages views equal the truth.
    assert mismatches(tables, traffic.truth) == []
    # One consumer and no restart: every record read once and loaded once.
    assert stats.records == stats.loaded == traffic.deliveries
    assert stats.dead_letters == stats.load_failures == stats.replays == 0
    # One transition per distinct status event, whatever order the events arrived in.
    assert tables.counts["transitions"] == statuses
