"""Fault test: SIGKILL the processor process at random moments while it loads, restart it each time, and
end with tables equal to the ground truth: nothing lost, nothing doubled.

The processor runs as `mailpulse process` in a subprocess on its own chDB directory, which this test
process never opens (it already holds the session's chDB directory, and chDB allows one per process);
the tables are read back by another subprocess (``dump_tables``).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailpulse.broker import EmbeddedBroker, die_with_parent
from mailpulse.settings import Settings
from simulator.traffic import generate
from tests.integration.groundtruth import (
    GroupProgress,
    Tables,
    mismatches,
    publish,
    status_events,
)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

REPO = Path(__file__).resolve().parents[2]
MESSAGES = 22_000  # about 83,000 deliveries
PARTITIONS = 6
KILLS = 12
SEED = 31337
# Each incarnation is killed this long (seconds, uniformly random) after its first commit, i.e. at a
# random point of its continuous loading. Measured from the start instead, most kills would land
# before any load: after a SIGKILL the dead member holds its partitions until its session expires,
# so a restart commits ~5 s after it starts.
KILL_AFTER_FIRST_COMMIT_S = (0.3, 0.8)
# Small batches: many load cycles (record the ranges, insert, commit) per second to land in, and the
# ~83,000 records outlast the kills (about 10,000 records/s are loaded).
BATCH_MAX_RECORDS = 500
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


class ProcessorProcess:
    """`mailpulse process` in a subprocess; its output goes to ``log``."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0  # where this incarnation's output starts in the log

    def start(self, label: str) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n=== {label} ===\n".encode())
            out.flush()
            self.started_at = out.tell()
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "mailpulse.cli", "-v", "process"],
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

    async def ready(self, timeout_s: float = 120.0) -> None:
        """Until this incarnation printed its banner: its SIGTERM handler is in place from then on (a
        SIGTERM before it would kill it, as for any process that has not set one up yet)."""
        deadline = time.monotonic() + timeout_s
        while b"processing " not in self.log.read_bytes()[self.started_at :]:
            self.alive()
            assert time.monotonic() < deadline, f"no banner in {timeout_s}s; see {self.log}"
            await asyncio.sleep(0.1)

    def alive(self) -> None:
        assert self.popen is not None
        if self.popen.poll() is not None:
            raise RuntimeError(f"processor exited with {self.popen.returncode}; see {self.log}")

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        self.popen = None

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM: the processor flushes, loads and commits, then exits."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout_s)
        finally:
            self.kill()


def processor_env(settings: Settings, chdb_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILPULSE_")}
    assert settings.kafka_bootstrap is not None
    env.update(
        {
            "MAILPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "MAILPULSE_CLICKHOUSE_URL": f"chdb://{chdb_dir}",
            "MAILPULSE_CLICKHOUSE_DATABASE": settings.clickhouse_database,
            "MAILPULSE_STATUS_TOPIC": settings.status_topic,
            "MAILPULSE_DEADLETTER_TOPIC": settings.deadletter_topic,
            "MAILPULSE_CONSUMER_GROUP": settings.consumer_group,
            "MAILPULSE_PARTITIONS": str(settings.partitions),
            "MAILPULSE_DATA_DIR": str(chdb_dir.parent),
            "MAILPULSE_BATCH_MAX_RECORDS": str(BATCH_MAX_RECORDS),
            "MAILPULSE_BATCH_WAIT_MS": "200",
            "MAILPULSE_CONSUMER_SESSION_TIMEOUT_MS": "2000",
            "MAILPULSE_METRICS_PORT": "0",
        }
    )
    return env


def dump_tables(chdb_dir: Path, database: str, out: Path) -> Tables:
    subprocess.run(
        [sys.executable, "-m", "tests.integration.dump_tables", f"chdb://{chdb_dir}", database, str(out)],
        cwd=REPO,
        check=True,
        timeout=120,
    )
    return Tables.from_json(out.read_bytes())


def subprocess_settings(broker: EmbeddedBroker, prefix: str, tmp_path: Path) -> tuple[Settings, Path]:
    """Settings with this test's own database, topics and group, and the chDB directory that only the
    processor subprocesses open (chDB: one directory per process)."""
    suffix = uuid.uuid4().hex[:10]
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        clickhouse_database=f"{prefix}_{suffix}",
        status_topic=f"{prefix}-status-{suffix}",
        deadletter_topic=f"{prefix}-dead-{suffix}",
        consumer_group=f"{prefix}-group-{suffix}",
        partitions=PARTITIONS,
    )
    chdb_dir = tmp_path / "processor" / "clickhouse"
    chdb_dir.parent.mkdir()
    return settings, chdb_dir


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
