"""SIGTERM under load: `mailpulse process` finishes its batch (loaded and committed) and exits 0 while
events keep arriving; a second processor drains the rest, and the tables equal the generator's truth:
nothing lost, nothing doubled.

The processor runs in subprocesses on their own chDB directory (this test process holds the session's),
with its health server on, so the signal takes the real path (uvicorn captures SIGTERM while it serves).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from adapters.publisher import encode
from mailpulse.broker import EmbeddedBroker, free_port
from mailpulse.topics import ensure_topics
from schemas.event import CanonicalEvent
from simulator.traffic import generate
from tests.integration.groundtruth import (
    GroupProgress,
    Tables,
    canonical_events,
    mismatches,
    status_events,
)
from tests.integration.processor_process import (
    ProcessorProcess,
    dump_tables,
    processor_env,
    subprocess_settings,
)

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

MESSAGES = 5_000  # about 19,000 deliveries
SEED = 4242
CHUNKS = 60  # produced one after another, PAUSE_S apart, while the processor runs
PAUSE_S = 0.1
FIRST_COMMIT_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 30.0  # a generous bound on a graceful exit (batch + flush + load + commit + leave)
CATCH_UP_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Produced:
    partition: int
    offset: int
    event: CanonicalEvent


def label(event: CanonicalEvent) -> str:
    """As the events view names an event: its status, else its provider event type."""
    return event.status.value if event.status is not None else event.raw_type


def loaded_below(produced: list[Produced], committed: dict[int, int]) -> set[tuple[str, str, int]]:
    """The distinct events (message, label, event time in ms) of every record below the committed offsets."""
    return {
        (p.event.message_id, label(p.event), round(p.event.occurred_at.timestamp() * 1000))
        for p in produced
        if p.offset < committed.get(p.partition, 0)
    }


class Load:
    """Produces the traffic in chunks as ingest does (key = message id, acks=all), remembering where each
    event landed. Past half of it, it waits for ``resume`` (the processor's first commit), so the
    SIGTERM always finds records still arriving."""

    def __init__(self, bootstrap: str, topic: str, events: list[CanonicalEvent]) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        size = -(-len(events) // CHUNKS)
        self.chunks = [events[i : i + size] for i in range(0, len(events), size)]
        self.produced: list[Produced] = []
        self.chunks_done = 0
        self.resume = asyncio.Event()

    async def run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            for n, chunk in enumerate(self.chunks):
                if n == len(self.chunks) // 2:
                    await asyncio.wait_for(self.resume.wait(), FIRST_COMMIT_TIMEOUT_S)
                sent = [
                    await producer.send(self.topic, key=e.message_id.encode(), value=encode(e)) for e in chunk
                ]
                for event, ack in zip(chunk, await asyncio.gather(*sent), strict=True):
                    self.produced.append(Produced(ack.partition, ack.offset, event))
                self.chunks_done += 1
                await asyncio.sleep(PAUSE_S)
        finally:
            await producer.stop()

    @property
    def end(self) -> dict[int, int]:
        end: dict[int, int] = {}
        for p in self.produced:
            end[p.partition] = max(end.get(p.partition, 0), p.offset + 1)
        return end


def test_sigterm_under_load_commits_what_it_loaded_and_loses_nothing(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings, chdb_dir = subprocess_settings(broker, "sigterm", tmp_path)
    log = tmp_path / "processor.log"
    env = processor_env(settings, chdb_dir) | {"MAILPULSE_METRICS_PORT": str(free_port())}
    process = ProcessorProcess(env, tmp_path, log)
    traffic = generate(MESSAGES, seed=SEED, duplicate_rate=0.2)
    load = Load(broker.bootstrap, settings.status_topic, canonical_events(traffic))

    async def scenario() -> tuple[int, dict[int, int], dict[int, int], int, int, Tables]:
        await ensure_topics(broker.bootstrap, settings.topics, settings.partitions)
        producing = asyncio.create_task(load.run())
        async with GroupProgress(
            broker.bootstrap, settings.consumer_group, settings.status_topic, settings.partitions
        ) as group:
            process.start("first: SIGTERM while events arrive")
            try:
                deadline = time.monotonic() + FIRST_COMMIT_TIMEOUT_S
                while not await group.committed():  # bounded: fails naming the log
                    process.alive()
                    assert time.monotonic() < deadline, f"no commit in {FIRST_COMMIT_TIMEOUT_S}s; see {log}"
                    await asyncio.sleep(0.05)
                load.resume.set()
                while load.chunks_done < len(load.chunks) // 2 + 2:
                    assert not producing.done(), producing
                    await asyncio.sleep(0.02)
                before = await group.committed()
                arrived, chunks_at_term = len(load.produced), load.chunks_done
                code = process.terminate(EXIT_TIMEOUT_S)
            finally:
                process.kill()
            after = await group.committed()
            # The first processor's rows, read before anyone else loads (its chDB directory is free now).
            first = await asyncio.to_thread(
                dump_tables, chdb_dir, settings.clickhouse_database, tmp_path / "first.json"
            )
            await asyncio.wait_for(producing, 120)
            process.start("second: drain the rest, then SIGTERM")
            try:
                await group.wait_caught_up(load.end, CATCH_UP_TIMEOUT_S, process.alive)
                second_code = process.terminate(EXIT_TIMEOUT_S)
            finally:
                process.kill()
        assert second_code == 0, f"the second processor exited {second_code}; see {log}"
        return code, before, after, arrived, chunks_at_term, first

    try:
        code, before, after, arrived, chunks_at_term, first = asyncio.run(scenario())
    finally:
        process.kill()
    print(
        f"\nSIGTERM after {arrived} of {len(load.produced)} records ({chunks_at_term}/{len(load.chunks)} "
        f"chunks); committed {sum(before.values())} before it, {sum(after.values())} at exit; log {log}"
    )
    # The signal came under load: records were still being produced, and not all were committed.
    assert chunks_at_term < len(load.chunks)
    assert sum(before.values()) < arrived
    assert code == 0, f"SIGTERM exit code {code}; see {log}"
    assert sum(after.values()) >= sum(before.values()) > 0
    # What the first processor left is exactly what it committed: its last batch was loaded and its
    # offsets committed (a processor that stopped between the two leaves more rows than its commits).
    assert len(first.events) == len(set(first.events)) == first.counts["events"]
    assert set(first.events) == loaded_below(load.produced, after)
    # After the second processor drained the rest: the truth, nothing lost, nothing doubled.
    tables = dump_tables(chdb_dir, settings.clickhouse_database, tmp_path / "tables.json")
    assert mismatches(tables, traffic.truth) == []
    assert tables.counts["transitions"] == status_events(traffic.truth)
