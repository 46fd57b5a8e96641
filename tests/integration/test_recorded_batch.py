"""A processor dies after its insert landed and before its commit; the next one loads exactly that batch
again, under the same token, so ClickHouse adds nothing.

The death is a BaseException raised by the store right after a real insert returned (nothing of the
processor runs after it), and the processor's memory of the batch is dropped, as a SIGKILL would. The
next processor fetches bigger batches: without the ranges recorded in the commit metadata, its first
batch would cover other offsets, carry another token and load the dead one's records a second time.
Every record is a distinct event and merges are stopped, so email_events holds one row per record
loaded once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from adapters.clickhouse import ClickHouseStore
from mailpulse.runtime import processor
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
)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

PARTITIONS = 3


class Died(BaseException):
    """The process is gone: nothing catches this."""


class DyingStore(ClickHouseStore):
    """The real store, whose ``loads``-th load dies once the insert has returned."""

    def __init__(self, store: ClickHouseStore, loads: int) -> None:
        super().__init__(store.client, store.database)
        self.loads = loads

    def load(self, values: Sequence[bytes], token: str) -> None:
        super().load(values, token)
        self.loads -= 1
        if self.loads == 0:
            raise Died


def test_a_batch_loaded_but_not_committed_is_loaded_again_under_its_token(
    settings: Settings, store: ClickHouseStore
) -> None:
    settings = settings.model_copy(update={"partitions": PARTITIONS, "batch_max_records": 200})
    traffic = generate(400, seed=2024, duplicate_rate=0.0)
    assert distinct_events(traffic.truth) == traffic.deliveries
    store.client.command(f"SYSTEM STOP MERGES {store.database}.email_events")

    async def scenario() -> ProcessorStats:
        assert settings.kafka_bootstrap is not None
        end = await publish(settings, traffic)
        dying = DyingStore(store, loads=2)
        async with processor(settings, settings.kafka_bootstrap, dying) as first:
            with pytest.raises(Died):
                async with asyncio.timeout(60):
                    await first.run(asyncio.Event())
            first._pending = None  # died with it: its release must not finish the batch
        bigger = settings.model_copy(update={"batch_max_records": 10_000})
        async with progress(settings) as group, consuming(bigger, store) as second:
            await group.wait_caught_up(end, 60.0, second.check)
            return second.proc.stats

    stats = asyncio.run(scenario())
    assert stats.replays == 1
    tables = read_tables(store.client, store.database)
    assert mismatches(tables, traffic.truth) == []
    assert tables.counts["email_events"] == traffic.deliveries  # the replayed batch was not added again
