"""Runs every measurement on one embedded broker and one chDB directory, and prints the table."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from clickhouse_connect.driver.client import Client

from mailpulse.bench import e2e, flood, http, loading, processor, producer, stages, workload
from mailpulse.bench.layout import LOAD_CORE, SERVER_CORE, describe, pin
from mailpulse.bench.report import Row, render
from mailpulse.broker import EmbeddedBroker, die_with_parent
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from processors.store import ClickHouseStore, connect

PARTITIONS = 6


@dataclass(frozen=True, slots=True)
class Sizes:
    events: int  # records for the producer ceiling, the loading ceiling and the processor
    http_seconds: float  # measured time of each HTTP run (after the warm-up)
    warmup_seconds: float
    connections: int
    e2e_rate: float  # events/s offered in the end-to-end run
    e2e_seconds: float
    memory_messages: int


FULL = Sizes(200_000, 10.0, 2.0, 16, 10_000.0, 10.0, 1_000_000)
QUICK = Sizes(10_000, 2.0, 0.5, 16, 2_000.0, 2.0, 20_000)


def set_aside() -> None:
    """Freeze the harness's own objects (workload, prepared batches): the in-process measurements (insert
    ceiling, processor, end to end) then pay the garbage collector for their heap only, as they would
    in a process of their own. Left in sight, millions of them were walked by every full collection."""
    gc.collect()
    gc.freeze()


def discard(client: Client, database: str) -> None:
    """Drop a measurement's database once measured: its parts' background merges would otherwise run
    during the next measurement, on the same core (merges took about a tenth of it during the drain)."""
    client.command(f"DROP DATABASE IF EXISTS {database} SYNC")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference > 0 else 0.0


async def _memory(messages: int, workdir: Path) -> dict[str, int]:
    out = workdir / "memory.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailpulse.bench.memory", str(messages), str(out), preexec_fn=die_with_parent
    )
    if await process.wait() != 0:
        raise RuntimeError(f"memory measurement exited with {process.returncode}")
    result: dict[str, int] = orjson.loads(out.read_bytes())
    return result


def _ingest_rows(
    ceiling: float, batches_ceiling: float, runs: dict[tuple[str, str], http.HttpFigures]
) -> list[Row]:
    og, ot = runs["ours", "sendgrid"], runs["ours", "twilio"]
    bg, bt = runs["baseline", "sendgrid"], runs["baseline", "twilio"]
    of_ceiling, over_base = _ratio(og.events_per_s, ceiling), _ratio(og.events_per_s, bg.events_per_s)
    single = _ratio(ot.requests_per_s, bt.requests_per_s)
    cpu_event, cpu_request = bg.cpu_us_per_event, bt.cpu_us_per_request
    cpu_batch = f"baseline {cpu_event:.1f} us ({_ratio(cpu_event, og.cpu_us_per_event):.1f}x ours)"
    cpu_single = f"baseline {cpu_request:.0f} us ({_ratio(cpu_request, ot.cpu_us_per_request):.1f}x ours)"
    return [
        Row("1 Kafka producer ceiling (aiokafka, acks=all)", ceiling, "events/s"),
        Row("1 (reference) producer, own record batches", batches_ceiling, "events/s",
            f"{_ratio(batches_ceiling, ceiling):.1f}x the send() loop"),
        Row("2 ingest SendGrid x100 throughput", og.events_per_s, "events/s",
            f"{of_ceiling:.2f} of ceiling, {over_base:.1f}x baseline", ">= 0.80, >= 3x",
            of_ceiling >= 0.8 and over_base >= 3),
        Row("2 ingest SendGrid x100 latency p50", og.p50_ms, "ms", f"p99 {og.p99_ms:.1f} ms"),
        Row("2 ingest Twilio single throughput", ot.requests_per_s, "requests/s",
            f"{single:.1f}x baseline", ">= 1.5x", single >= 1.5),
        Row("2 ingest Twilio single latency p99", ot.p99_ms, "ms", f"p50 {ot.p50_ms:.1f} ms", "< 50 ms",
            ot.p99_ms < 50),
        Row("3 baseline SendGrid x100", bg.events_per_s, "events/s", f"p99 {bg.p99_ms:.1f} ms"),
        Row("3 baseline Twilio single", bt.requests_per_s, "requests/s", f"p99 {bt.p99_ms:.1f} ms"),
        Row("2/3 server CPU, SendGrid x100", og.cpu_us_per_event, "us/event", cpu_batch),
        Row("2/3 server CPU, Twilio single", ot.cpu_us_per_request, "us/request", cpu_single),
    ]  # fmt: skip


def _flood_rows(figures: list[flood.FloodFigures]) -> list[Row]:
    return [
        Row(f"8 flood longest loop stall, {f.name}", f.longest_wait_ms, "ms",
            f"{f.elements:,} elements: {f.status} in {f.answer_ms:,.0f} ms; orjson.loads alone "
            f"{f.read_ms:,.0f} ms; idle probe max {f.idle_longest_ms:.1f} ms")
        for f in figures
    ]  # fmt: skip


async def run(sizes: Sizes, workdir: Path, ingest_only: bool = False) -> list[Row]:
    """Every measurement; ``ingest_only``: measurements 1-3 (producer ceiling, ingest, baseline)."""
    pin(SERVER_CORE)
    log(describe())
    with EmbeddedBroker(log_path=workdir / "tansu.log") as broker:
        bootstrap = broker.bootstrap
        topics = ["bench.status", "bench.batches", *(f"bench.http.{n}" for n in range(4)), "bench.e2e"]
        topics.append("bench.flood")
        await ensure_topics(bootstrap, topics + [f"{t}.dead" for t in topics], PARTITIONS)
        log(f"building ~{sizes.events:,} events")
        work = workload.build(sizes.events)
        n = len(work.records)
        set_aside()

        log(f"1 producer ceiling: {n:,} records")
        ceiling_s = await producer.produce(bootstrap, "bench.status", work.records)
        ceiling = n / ceiling_s
        batches_ceiling = n / await producer.produce_batches(bootstrap, "bench.batches", work.records)

        sendgrid = work.sendgrid_bodies()
        sendgrid_counts = [len(orjson.loads(b)) for b in sendgrid]
        twilio = work.twilio_bodies()
        runs = {}
        for i, (kind, endpoint, bodies, counts) in enumerate(
            [
                ("ours", "sendgrid", sendgrid, sendgrid_counts),
                ("ours", "twilio", twilio, [1] * len(twilio)),
                ("baseline", "sendgrid", sendgrid, sendgrid_counts),
                ("baseline", "twilio", twilio, [1] * len(twilio)),
            ]
        ):
            log(f"{'2 ingest' if kind == 'ours' else '3 baseline'} {endpoint}: {sizes.http_seconds}s")
            runs[kind, endpoint] = await http.measure(
                kind, endpoint, bodies, counts, bootstrap, f"bench.http.{i}", workdir,
                sizes.connections, sizes.http_seconds, sizes.warmup_seconds,
            )  # fmt: skip
        log("8 floods of invalid elements, a /healthz probe measuring the loop's stalls")
        pin(LOAD_CORE)  # the probe must not wait for the server's core, only for its loop
        floods = _flood_rows(await flood.measure(bootstrap, "bench.flood", Settings().max_batch_elements))
        pin(SERVER_CORE)
        if ingest_only:
            return [*_ingest_rows(ceiling, batches_ceiling, runs), *floods]

        settings = Settings(
            data_dir=workdir, kafka_bootstrap=bootstrap, clickhouse_url=f"chdb://{workdir / 'chdb'}",
            partitions=PARTITIONS, metrics_port=0,
        )  # fmt: skip
        client = connect(settings.clickhouse_dsn())
        stores = {}
        for database in (
            "bench_ceiling",
            "bench_ceiling_arrow",
            "bench_processor",
            "bench_stages",
            "bench_e2e",
        ):
            stores[database] = ClickHouseStore(client, database)
            stores[database].migrate()
        proc_settings = processor.bench_settings(settings, "bench.status")

        log(f"4 loading ceiling: {n:,} events in batches of {proc_settings.batch_max_records:,}")
        prepared = loading.batches(work.events, proc_settings.batch_max_records)
        set_aside()
        native_ceiling = n / loading.insert(client, "bench_ceiling", prepared)
        discard(client, "bench_ceiling")
        log(f"4 loading ceiling, Arrow: {n:,} events")
        arrow_ceiling = n / loading.insert_arrow(client, "bench_ceiling_arrow", prepared)
        discard(client, "bench_ceiling_arrow")
        insert_ceiling = max(native_ceiling, arrow_ceiling)  # the honest ceiling: the faster bare method

        log(f"5 processor: draining {n:,} records")
        drain_s, _, collector = await processor.drain(proc_settings, bootstrap, stores["bench_processor"], n)
        proc_rate = n / drain_s
        discard(client, "bench_processor")
        log(f"5 processor by stage: {n:,} records, in process")
        by_stage = stages.measure(work.records, stores["bench_stages"], proc_settings.batch_max_records)
        discard(client, "bench_stages")

        log(f"6 end to end: {sizes.e2e_rate:,.0f} events/s for {sizes.e2e_seconds}s")
        pin(LOAD_CORE)  # the processor shares the load core; ingest has the server core
        e2e_settings = processor.bench_settings(settings, "bench.e2e", **e2e.LATENCY_SETTINGS)
        latency = await e2e.measure(
            e2e_settings, bootstrap, stores["bench_e2e"], workdir, sizes.e2e_rate, sizes.e2e_seconds
        )
        pin(SERVER_CORE)

    log(f"7 memory: {sizes.memory_messages:,} messages in state")
    memory = await _memory(sizes.memory_messages, workdir)
    per_message = memory["retained_bytes"] / memory["messages"]

    of_insert = _ratio(proc_rate, insert_ceiling)
    return [
        *_ingest_rows(ceiling, batches_ceiling, runs),
        *floods,
        Row("4 ClickHouse insert ceiling (Native)", native_ceiling, "events/s",
            f"{_ratio(native_ceiling, insert_ceiling):.2f} of ceiling"),
        Row("4 ClickHouse insert ceiling (Arrow)", arrow_ceiling, "events/s",
            f"{_ratio(arrow_ceiling, insert_ceiling):.2f} of ceiling"),
        Row("5 processor (dedupe + reorder)", proc_rate, "events/s",
            f"{of_insert:.2f} of insert ceiling; collector {collector.collections} runs, "
            f"{collector.seconds * 1000:.0f} ms, {collector.freed:,} freed in cycles",
            ">= 100,000/s, >= 0.70", proc_rate >= 100_000 and of_insert >= 0.7),
        Row("5 processor stages, in process", sum(by_stage.values()), "us/event",
            ", ".join(f"{stage} {us:.1f}" for stage, us in by_stage.items())
            + f"; the drain: {_ratio(1e6, proc_rate):.0f} us/event"),
        Row(f"6 end to end p99 at {latency.offered_per_s:,.0f}/s", latency.p99_ms, "ms",
            f"p50 {latency.p50_ms:.0f} ms, {latency.visible:,}/{latency.acknowledged:,} seen", "< 2,000 ms",
            latency.p99_ms < 2000 and latency.visible == latency.acknowledged > 0),
        Row(f"7 processor state, {memory['messages']:,} messages", per_message, "bytes/message",
            f"peak {memory['peak_bytes'] / memory['messages']:,.0f} B/msg (RSS)", "<= 1,024",
            per_message <= 1024),
    ]  # fmt: skip


def main(sizes: Sizes, keep: bool = False, ingest_only: bool = False) -> int:
    from mailpulse.runtime import run_async

    with contextlib.ExitStack() as stack:
        workdir = (
            Path(tempfile.mkdtemp(prefix="mailpulse-bench-"))
            if keep
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mailpulse-bench-")))
        )
        started = time.monotonic()
        rows = run_async(run(sizes, workdir, ingest_only))
        print(render(rows))
        print(
            f"\n{describe()}."
            "\nProcesses: this runner (producer loop, inserts, processor), one server under test at a time,"
            " the load generator, the Tansu broker, the memory probe."
            f" Took {time.monotonic() - started:.0f}s."
        )
    return 0
