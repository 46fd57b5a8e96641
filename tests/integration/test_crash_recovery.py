"""Fault test: SIGKILL the processor process at random moments while it loads, restart it each time, and
end with tables equal to the ground truth: nothing lost, nothing doubled.

The processor runs as `mailpulse process` in a subprocess on its own chDB directory, which this test
process never opens (it already holds the session's chDB directory, and chDB allows one per process);
the tables are read back by another subprocess (``dump_tables``).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailpulse.broker import EmbeddedBroker
from simulator.traffic import generate
from tests.integration.groundtruth import (
    GroupProgress,
    mismatches,
    publish,
    status_events,
)
from tests.integration.processor_process import (
    PARTITIONS,
    ProcessorProcess,
    dump_tables,
    processor_env,
    subprocess_settings,
)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

MESSAGES = 22_000  # about 83,000 deliveries
KILLS = 12
SEED = 31337
# Each incarnation is killed this long (seconds, uniformly random) after its first commit, i.e. at a
# random point of its continuous loading. Measured from the start instead, most kills would land
# before any load: after a SIGKILL the dead member holds its partitions until its session expires,
# so a restart commits ~5 s after it starts.
KILL_AFTER_FIRST_COMMIT_S = (0.3, 0.8)
FIRST_COMMIT_TIMEOUT_S = 30.0
CATCH_UP_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Kill:
    first_commit_s: float  # from the start of the process to its first commit
    killed_at_s: float  # from the start of the process to the SIGKILL
    committed_before: int  # records the group had committed when the process started
    committed_after: int  # ... when it was killed
    total: int

    @property
    def while_loading(self) -> bool:
        """This incarnation committed loads, and the kill came before everything was loaded."""
        return self.committed_before < self.committed_after < self.total


def test_sigkill_while_loading_loses_and_doubles_nothing(broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings, chdb_dir = subprocess_settings(broker, "fault", tmp_path)
    log = tmp_path / "processor.log"
    process = ProcessorProcess(processor_env(settings, chdb_dir), tmp_path, log)
    traffic = generate(MESSAGES, seed=SEED, duplicate_rate=0.2)
    assert traffic.deliveries >= 50_000
    rng = random.Random(SEED)
    kills: list[Kill] = []

    async def committed(group: GroupProgress) -> int:
        return sum((await group.committed()).values())

    async def first_commit(group: GroupProgress, before: int) -> None:
        """Until this incarnation has committed a load (bounded)."""
        deadline = time.monotonic() + FIRST_COMMIT_TIMEOUT_S
        while await committed(group) == before:
            process.alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the processor committed nothing in {FIRST_COMMIT_TIMEOUT_S}s; see {log}")
            await asyncio.sleep(0.05)

    async def scenario() -> None:
        end = await publish(settings, traffic)
        total = sum(end.values())
        async with GroupProgress(
            broker.bootstrap, settings.consumer_group, settings.status_topic, PARTITIONS
        ) as group:
            for n in range(KILLS):
                before = await committed(group)
                delay = rng.uniform(*KILL_AFTER_FIRST_COMMIT_S)
                process.start(f"run {n}: SIGKILL {delay:.2f}s after its first commit")
                started = time.monotonic()
                try:
                    await first_commit(group, before)
                    loading = time.monotonic() - started
                    await asyncio.sleep(delay)
                    process.alive()
                finally:
                    process.kill()
                killed = time.monotonic() - started
                kills.append(Kill(loading, killed, before, await committed(group), total))
            process.start("final run: until caught up, then SIGTERM")
            try:
                await process.ready()  # the killed ones may have loaded everything already
                await group.wait_caught_up(end, CATCH_UP_TIMEOUT_S, process.alive)
                assert process.terminate() == 0, f"see {log}"
            finally:
                process.kill()

    started = time.perf_counter()
    try:
        asyncio.run(scenario())
    finally:
        process.kill()
    tables = dump_tables(chdb_dir, settings.clickhouse_database, tmp_path / "tables.json")
    loading = [k for k in kills if k.while_loading]
    print(f"\n{len(kills)} SIGKILLs, {len(loading)} while loading; {time.perf_counter() - started:.1f}s")
    for k in kills:
        print(
            f"  first commit {k.first_commit_s:.2f}s, killed {k.killed_at_s:.2f}s after start; "
            f"committed {k.committed_before} -> {k.committed_after} of {k.total}"
        )
    replays = log.read_text().count("loading again the batch recorded")
    print(f"  counts {tables.counts}; {replays} recorded batches loaded again; log {log}")
    # Nothing lost, nothing doubled: the views equal the truth although restarts loaded again the
    # batches that killed incarnations had recorded (and maybe loaded).
    assert mismatches(tables, traffic.truth) == []
    assert tables.counts["transitions"] == status_events(traffic.truth)
    assert len(kills) >= 10
    assert len(loading) == len(kills), kills
