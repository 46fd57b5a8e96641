"""Measurement 5: the real StatusProcessor draining a pre-filled topic into ClickHouse, timed from the
group assignment until every record is loaded and committed. Sinks: a migrated, empty database; a
nil sink that neither parses nor keeps anything (what the processor costs when a ClickHouse server does
the engine's work elsewhere); the engine's landing table as a Null table without views (what an embedded
ClickHouse still parses on this core); a migrated one that already holds many stored events (a restart over
a full database)."""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import Sequence
from typing import Any, Self

from clickhouse_connect.driver.client import Client

from adapters.clickhouse import ClickHouseStore
from mailpulse.runtime import processor
from mailpulse.settings import Settings
from processors.status_processor import ProcessorStats, StatusProcessor
from storage.migrations import SchemaOptions, m0012_processor_batches
from storage.migrations.m0011_engine_merge import landing_table

COPIES_A_STATEMENT = 8  # copies a statement: one statement of every copy holds them all in memory at once


async def wait_assigned(proc: StatusProcessor, timeout_s: float = 30.0) -> None:
    """Tansu delays a join by half the session timeout; the bench starts its clock after it."""
    async with asyncio.timeout(timeout_s):
        while not proc.consumer.assignment():  # noqa: ASYNC110 (aiokafka has no assignment event)
            await asyncio.sleep(0.02)


def bench_settings(settings: Settings, topic: str, **overrides: object) -> Settings:
    return settings.model_copy(
        update={
            "status_topic": topic,
            "consumer_group": f"bench-{uuid.uuid4().hex[:8]}",
            "consumer_session_timeout_ms": 2000,
            **overrides,
        }
    )


class CollectorClock:
    """What the cyclic garbage collector did while installed (``gc.callbacks``): collections, their
    seconds, and the objects they freed, which only it could free (they were in reference cycles)."""

    def __init__(self) -> None:
        self.collections = 0
        self.seconds = 0.0
        self.freed = 0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        self.collections += 1
        self.seconds += time.perf_counter() - self._began
        self.freed += info["collected"]

    def __enter__(self) -> Self:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self)


async def drain(
    settings: Settings, bootstrap: str, store: ClickHouseStore, records: int
) -> tuple[float, ProcessorStats, CollectorClock]:
    """Seconds the processor takes to consume, load and commit at least ``records`` records (whole
    batches: ``stats.records`` says how many), and what the garbage collector did meanwhile."""
    async with processor(settings, bootstrap, store) as proc:
        await wait_assigned(proc)
        with CollectorClock() as collector:
            started = time.perf_counter()
            while not proc.drained(records):
                await proc.run_once()
            return time.perf_counter() - started, proc.stats, collector


def rate(drained: tuple[float, ProcessorStats, CollectorClock]) -> float:
    """Events/s of a ``drain``: the records it loaded (its last batch may go past the target) over its
    seconds."""
    seconds, stats, _ = drained
    return stats.records / seconds


class NilSinkStore(ClickHouseStore):
    """The processor's store with a landing table that keeps nothing and parses nothing: a Null table of
    one String column taking each batch as one RawBLOB value. The processor's side of a load is
    unchanged (values joined, one insert under the batch's token, the recorded ranges written before);
    what a ClickHouse server would do elsewhere (parse, views) is not done on this core at all."""

    landing_table = "nil_landing"
    landing_format = "RawBLOB"


def nil_sink(client: Client, database: str) -> ClickHouseStore:
    """A ``NilSinkStore`` in ``database``, with the processor's own table of recorded batches: writing
    it is the processor's work, not the engine's."""
    _recorded_batches(client, database)
    client.command(f"CREATE TABLE IF NOT EXISTS {database}.nil_landing (raw String) ENGINE = Null")
    return NilSinkStore(client, database)


def null_landing(client: Client, database: str) -> ClickHouseStore:
    """A store whose landing table is the engine's (same DDL, a Null table) with no view behind it: an
    embedded ClickHouse parses each insert on this core and keeps nothing."""
    _recorded_batches(client, database)
    client.command(landing_table(database, None))
    return ClickHouseStore(client, database)


def _recorded_batches(client: Client, database: str) -> None:
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    for statement in m0012_processor_batches.statements(SchemaOptions(database, None)):
        client.command(statement)


def fill(store: ClickHouseStore, values: Sequence[bytes], events: int, batch: int) -> int:
    """Store at least ``events`` distinct events: copies of ``values`` through the landing table (so every
    view fills), each copy under message and event ids of its own: new messages, not duplicates. Loaded
    once as bytes into a seed table, then copied by ClickHouse (INSERT ... SELECT, a few copies a
    statement to bound its memory), which is much faster than sending the JSON again. Waits for the
    merges they start to finish; returns the events stored then."""
    client, db, seed = store.client, store.database, f"{store.database}_seed"
    client.command(f"CREATE DATABASE IF NOT EXISTS {seed}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {seed}.email_events_in AS {db}.email_events_in "
        "ENGINE = MergeTree ORDER BY tuple()"
    )
    seeded = ClickHouseStore(client, seed)
    for start in range(0, len(values), batch):
        seeded.load(values[start : start + batch], f"seed|{start}")
    (distinct,) = client.query(f"SELECT uniqExact(dedupe_key) FROM {seed}.email_events_in").result_rows[0]
    copies = max(1, -(-events // max(1, int(distinct))))
    names = [
        str(name)
        for (name,) in client.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = 'email_events_in' "
            "ORDER BY position",
            parameters={"db": db},
        ).result_rows
    ]
    renamed = {
        "message_id": "concat(message_id, '~', toString(copy))",
        "event_id": "concat(event_id, '~', toString(copy))",
        "dedupe_key": "lower(hex(MD5(concat(dedupe_key, '~', toString(copy)))))",
    }
    select = ", ".join(renamed.get(name, name) for name in names)
    for first in range(0, copies, COPIES_A_STATEMENT):
        last = min(copies, first + COPIES_A_STATEMENT)
        client.command(
            f"INSERT INTO {db}.email_events_in ({', '.join(names)}) "
            f"SELECT {select} FROM {seed}.email_events_in ARRAY JOIN range({first}, {last}) AS copy"
        )
    client.command(f"DROP DATABASE {seed} SYNC")
    settle(client, db)
    return int(client.query(f"SELECT count() FROM {db}.email_events").result_rows[0][0])


def settle(client: Client, database: str, timeout_s: float = 300.0) -> None:
    """Wait until no merge runs in ``database``: the drain measured next would share the core with them."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = client.query(
            "SELECT count() FROM system.merges WHERE database = {db:String}", parameters={"db": database}
        ).result_rows[0][0]
        if int(running) == 0:
            return
        time.sleep(0.5)
