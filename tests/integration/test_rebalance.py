"""A member joins the consumer group while the only other member is in the middle of a batch.

The first member's first load is held (a wrapper around the real ClickHouse store waits on an event)
until the broker lists the newcomer in the group and the first member has been asked to give up its
partitions; then both run until the group has committed every partition to its end. The first member
loses all its partitions mid-batch and gets half of them back in the same rebalance; the newcomer
starts the other half from the commits. Nothing may be lost or loaded twice, and no commit may fail.

chDB opens one data directory per process, so both members live in this process and share the one
ClickHouse client, as they would in embedded mode.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from adapters.clickhouse import ClickHouseStore
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from processors.status_processor import ProcessorStats
from simulator.traffic import generate
from tests.integration.groundtruth import (
    GroupProgress,
    Running,
    consuming,
    mismatches,
    progress,
    publish,
    read_tables,
    status_events,
)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

MESSAGES = 1_500  # about 5,600 deliveries
PARTITIONS = 6
BATCH_MAX_RECORDS = 400  # the held batch holds a small part of every partition
HOLD_S = 60.0  # the most the held load waits (the test lets it go once the newcomer is in the group)
JOIN_TIMEOUT_S = 30.0
CATCH_UP_TIMEOUT_S = 90.0


class HeldStore(ClickHouseStore):
    """The real store, whose first load waits until ``go`` is set (loads run in a worker thread)."""

    def __init__(self, store: ClickHouseStore) -> None:
        super().__init__(store.client, store.database)
        self.entered = threading.Event()
        self.go = threading.Event()

    def load(self, values: Sequence[bytes], token: str) -> None:
        if not self.entered.is_set():
            self.entered.set()
            if not self.go.wait(HOLD_S):
                raise TimeoutError("the held load was never let go")
        super().load(values, token)


async def wait_members(group: GroupProgress, members: int, alive: Running) -> None:
    """Until the broker lists ``members`` members in the group (a joining member is listed as soon as
    its JoinGroup arrives, before the rebalance completes)."""
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while True:
        alive.check()
        [described] = (await group.admin.describe_consumer_groups([group.group]))[0].groups
        if len(described[5]) == members:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group.group} had {len(described[5])} members, not {members}")
        await asyncio.sleep(0.05)


async def wait_revoking(running: Running) -> None:
    """Until the member has begun giving up its partitions (it learns of a rebalance by heartbeat)."""
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while running.proc.stats.revoked == 0:
        running.check()
        if time.monotonic() > deadline:
            raise TimeoutError("the member was never asked to give up its partitions")
        await asyncio.sleep(0.05)


def partitions(running: Running) -> set[int]:
    return {tp.partition for tp in running.proc.consumer.assignment()}


def test_member_joining_mid_batch_loses_nothing_doubles_nothing_stalls_nothing(
    settings: Settings, store: ClickHouseStore
) -> None:
    settings = settings.model_copy(update={"partitions": PARTITIONS, "batch_max_records": BATCH_MAX_RECORDS})
    traffic = generate(MESSAGES, seed=4242, duplicate_rate=0.2)
    held = HeldStore(store)

    async def scenario() -> tuple[list[ProcessorStats], list[set[int]], dict[int, int], dict[int, int]]:
        """(each member's stats, the partitions each owned once both ran, end offsets, final commits)"""
        assert settings.kafka_bootstrap is not None
        await ensure_topics(settings.kafka_bootstrap, settings.topics, settings.partitions)
        end = await publish(settings, traffic)
        stop = asyncio.Event()
        joined: asyncio.Future[Running] = asyncio.get_running_loop().create_future()

        async def newcomer() -> None:
            # Entering returns once the member has partitions, i.e. after the rebalance it starts.
            async with consuming(settings, store) as running:
                joined.set_result(running)
                await stop.wait()

        async with progress(settings) as group, consuming(settings, held) as first:
            assert await asyncio.to_thread(held.entered.wait, JOIN_TIMEOUT_S), "no load began"
            assert partitions(first) == set(range(PARTITIONS))
            joining = asyncio.create_task(newcomer())
            try:
                await wait_members(group, 2, first)
                await wait_revoking(first)
                assert not first.proc.drained(1), "the first batch is held, not loaded"
                held.go.set()
                async with asyncio.timeout(JOIN_TIMEOUT_S):
                    second = await asyncio.shield(joined)

                def alive() -> None:
                    first.check()
                    second.check()

                await group.wait_caught_up(end, CATCH_UP_TIMEOUT_S, alive)
                owned = [partitions(first), partitions(second)]
            finally:
                held.go.set()
                stop.set()
                async with asyncio.timeout(JOIN_TIMEOUT_S):
                    await joining
        async with progress(settings) as group:
            committed = await group.committed()  # after both flushed, committed and left
        return [first.proc.stats, second.proc.stats], owned, end, committed

    stats, owned, end, committed = asyncio.run(scenario())
    print(f"\npartitions {owned}; stats {stats}")
    # The newcomer got partitions in the rebalance that happened mid-batch, and worked on them.
    assert all(owned) and owned[0].isdisjoint(owned[1]) and owned[0] | owned[1] == set(range(PARTITIONS))
    assert stats[1].loaded > 0
    # No stalled commits: none failed, and every partition's commit reached its end offset.
    assert [s.commit_failures for s in stats] == [0, 0]
    assert committed == end
    tables = read_tables(store.client, store.database)
    # The events and messages views equal the truth, one transition per distinct status event.
    assert mismatches(tables, traffic.truth) == []
    assert tables.counts["transitions"] == status_events(traffic.truth)
    # And every record was loaded once, by one member: the held batch by the first, in its release.
    assert sum(s.loaded for s in stats) == sum(s.records for s in stats) == traffic.deliveries
    assert [s.replays for s in stats] == [0, 0]
