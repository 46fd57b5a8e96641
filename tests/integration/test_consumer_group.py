"""Two processor instances in one consumer group split the partitions and load the same tables as one.

chDB opens one data directory per process, so both instances live in this process and share the one
ClickHouse client, as they would in embedded mode (docs/design.md).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from adapters.clickhouse import ClickHouseStore
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from processors.status_processor import ProcessorStats
from simulator.traffic import generate
from tests.integration.groundtruth import (
    Running,
    consuming,
    mismatches,
    progress,
    publish,
    read_tables,
)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

MESSAGES = 5_000
PARTITIONS = 6


async def wait_assigned(instances: list[Running], timeout_s: float = 30.0) -> None:
    """Until every instance owns partitions and together they own all of them."""
    deadline = time.monotonic() + timeout_s
    while True:
        for running in instances:
            running.check()
        owned = [running.proc.consumer.assignment() for running in instances]
        if all(owned) and sum(map(len, owned)) == PARTITIONS:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"assignments after {timeout_s}s: {owned}")
        await asyncio.sleep(0.1)


def test_two_instances_share_partitions_and_equal_ground_truth(
    settings: Settings, store: ClickHouseStore
) -> None:
    settings = settings.model_copy(
        update={
            "partitions": PARTITIONS,
            # Both instances share one event loop and one ClickHouse: several batches a second.
            "batch_max_records": 3000,
        }
    )
    traffic = generate(MESSAGES, seed=77, duplicate_rate=0.2)

    async def scenario() -> tuple[list[ProcessorStats], list[set[int]]]:
        assert settings.kafka_bootstrap is not None
        await ensure_topics(settings.kafka_bootstrap, settings.topics, settings.partitions)
        async with (
            progress(settings) as group,
            consuming(settings, store) as first,
            consuming(settings, store) as second,
        ):
            instances = [first, second]
            await wait_assigned(instances)  # both members joined before there is anything to read

            def alive() -> None:
                for running in instances:
                    running.check()

            owned = [{tp.partition for tp in r.proc.consumer.assignment()} for r in instances]
            end = await publish(settings, traffic)
            await group.wait_caught_up(end, 60.0, alive)
        return [first.proc.stats, second.proc.stats], owned

    stats, owned = asyncio.run(scenario())
    print(f"\npartitions {owned}; stats {stats}")
    assert all(owned) and owned[0].isdisjoint(owned[1]) and owned[0] | owned[1] == set(range(PARTITIONS))
    assert all(s.records > 0 and s.loaded > 0 for s in stats)
    # Each record was loaded by exactly one instance, whatever rebalances happened.
    assert sum(s.loaded for s in stats) == sum(s.records for s in stats) == traffic.deliveries
    assert sum(s.dead_letters + s.commit_failures + s.replays for s in stats) == 0
    assert mismatches(read_tables(store.client, store.database), traffic.truth) == []
