"""Runs every measurement on one embedded broker and one chDB directory, and prints the table."""

from __future__ import annotations

import contextlib
import gc
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
from clickhouse_connect.driver.client import Client

from adapters.clickhouse import ClickHouseStore, connect
from bench import ceiling, e2e, flood, http, plain, processor, producer, workload
from bench.layout import LOAD_CORE, SERVER_CORE, describe, pin
from bench.report import Row, render
from mailpulse.broker import EmbeddedBroker
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics

PARTITIONS = 6


@dataclass(frozen=True, slots=True)
class Sizes:
    events: (
        int  # records for the producer ceiling, the composed ceiling, the plain consumer and the processor
    )
    http_seconds: float  # measured time of each HTTP run (after the warm-up)
    warmup_seconds: float
    connections: int
    e2e_rate: float  # events/s offered in the end-to-end run
    e2e_seconds: float
    stored_events: int  # at least this many events stored when the restarted processor drains


FULL = Sizes(200_000, 10.0, 2.0, 16, 10_000.0, 10.0, 10_000_000)
QUICK = Sizes(10_000, 2.0, 0.5, 16, 2_000.0, 2.0, 20_000)

Figures = dict[str, float]


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


def _ingest_figures(
    ceiling: float, batches_ceiling: float, runs: dict[tuple[str, str], http.HttpFigures]
) -> Figures:
    og, ot = runs["ours", "sendgrid"], runs["ours", "twilio"]
    bg, bt = runs["baseline", "sendgrid"], runs["baseline", "twilio"]
    return {
        "producer_events_per_s": ceiling,
        "producer_own_batches_events_per_s": batches_ceiling,
        "ingest_batched_events_per_s": og.events_per_s,
        "ingest_batched_vs_ceiling": _ratio(og.events_per_s, ceiling),
        "ingest_batched_vs_baseline": _ratio(og.events_per_s, bg.events_per_s),
        "ingest_batched_p50_ms": og.p50_ms,
        "ingest_batched_p99_ms": og.p99_ms,
        "ingest_single_requests_per_s": ot.requests_per_s,
        "ingest_single_vs_baseline": _ratio(ot.requests_per_s, bt.requests_per_s),
        "ingest_single_p50_ms": ot.p50_ms,
        "ingest_single_p99_ms": ot.p99_ms,
        "baseline_batched_events_per_s": bg.events_per_s,
        "baseline_batched_p99_ms": bg.p99_ms,
        "baseline_single_requests_per_s": bt.requests_per_s,
        "baseline_single_p99_ms": bt.p99_ms,
        "ingest_batched_cpu_us_per_event": og.cpu_us_per_event,
        "baseline_batched_cpu_us_per_event": bg.cpu_us_per_event,
        "ingest_single_cpu_us_per_request": ot.cpu_us_per_request,
        "baseline_single_cpu_us_per_request": bt.cpu_us_per_request,
    }


def _ingest_rows(f: Figures) -> list[Row]:
    of_ceiling, over_base = f["ingest_batched_vs_ceiling"], f["ingest_batched_vs_baseline"]
    single = f["ingest_single_vs_baseline"]
    cpu_event, cpu_request = f["baseline_batched_cpu_us_per_event"], f["baseline_single_cpu_us_per_request"]
    ours_event, ours_request = f["ingest_batched_cpu_us_per_event"], f["ingest_single_cpu_us_per_request"]
    cpu_batch = f"baseline {cpu_event:.1f} us ({_ratio(cpu_event, ours_event):.1f}x ours)"
    cpu_single = f"baseline {cpu_request:.0f} us ({_ratio(cpu_request, ours_request):.1f}x ours)"
    batches_ceiling = f["producer_own_batches_events_per_s"]
    return [
        Row("1 Kafka producer ceiling (aiokafka, acks=all)", f["producer_events_per_s"], "events/s"),
        Row("1 (reference) producer, own record batches", batches_ceiling, "events/s",
            f"{_ratio(batches_ceiling, f['producer_events_per_s']):.1f}x the send() loop"),
        Row("2 ingest SendGrid x100 throughput", f["ingest_batched_events_per_s"], "events/s",
            f"{of_ceiling:.2f} of ceiling, {over_base:.1f}x baseline", ">= 0.80, >= 3x",
            of_ceiling >= 0.8 and over_base >= 3),
        Row("2 ingest SendGrid x100 latency p50", f["ingest_batched_p50_ms"], "ms",
            f"p99 {f['ingest_batched_p99_ms']:.1f} ms"),
        Row("2 ingest Twilio single throughput", f["ingest_single_requests_per_s"], "requests/s",
            f"{single:.1f}x baseline", ">= 1.5x", single >= 1.5),
        Row("2 ingest Twilio single latency p99", f["ingest_single_p99_ms"], "ms",
            f"p50 {f['ingest_single_p50_ms']:.1f} ms", "< 50 ms", f["ingest_single_p99_ms"] < 50),
        Row("3 baseline SendGrid x100", f["baseline_batched_events_per_s"], "events/s",
            f"p99 {f['baseline_batched_p99_ms']:.1f} ms"),
        Row("3 baseline Twilio single", f["baseline_single_requests_per_s"], "requests/s",
            f"p99 {f['baseline_single_p99_ms']:.1f} ms"),
        Row("2/3 server CPU, SendGrid x100", f["ingest_batched_cpu_us_per_event"], "us/event", cpu_batch),
        Row("2/3 server CPU, Twilio single", f["ingest_single_cpu_us_per_request"], "us/request", cpu_single),
    ]  # fmt: skip


def _flood_rows(figures: list[flood.FloodFigures]) -> list[Row]:
    return [
        Row(f"8 flood longest loop stall, {f.name}", f.longest_wait_ms, "ms",
            f"{f.elements:,} elements: {f.status} in {f.answer_ms:,.0f} ms; orjson.loads alone "
            f"{f.read_ms:,.0f} ms; idle probe max {f.idle_longest_ms:.1f} ms")
        for f in figures
    ]  # fmt: skip


def _flood_figures(figures: list[flood.FloodFigures]) -> Figures:
    return {"flood_longest_stall_ms": max((f.longest_wait_ms for f in figures), default=0.0)}


def _processor_rows(f: Figures) -> list[Row]:
    of_ceiling, over_plain = f["processor_vs_ceiling"], f["processor_vs_plain_consumer"]
    own, restart = f["processor_own_vs_bare_drain"], f["restart_drain_vs_fresh"]
    p99 = f["e2e_p99_ms"]
    seen = f"{f['e2e_visible']:,.0f}/{f['e2e_acknowledged']:,.0f} seen"
    all_seen = f["e2e_visible"] == f["e2e_acknowledged"] > 0
    return [
        Row("4 bare Kafka drain (getmany, commit)", f["bare_drain_events_per_s"], "events/s"),
        Row("4 bare byte insert (landing table, views)", f["byte_insert_events_per_s"], "events/s"),
        Row("4 composed ceiling, one core", f["ceiling_events_per_s"], "events/s",
            "1 / (1/drain + 1/insert)"),
        Row("4 (reference) byte insert, Null table, no views", f["null_insert_events_per_s"], "events/s",
            "the parse alone, as an embedded ClickHouse does it"),
        Row("4 plain consumer (pydantic, one table)", f["plain_consumer_events_per_s"], "events/s",
            f"{_ratio(f['plain_consumer_events_per_s'], f['ceiling_events_per_s']):.2f} of ceiling"),
        Row("5 processor", f["processor_events_per_s"], "events/s",
            f"{of_ceiling:.2f} of ceiling, {over_plain:.2f}x plain consumer; "
            f"{f['processor_records_per_batch']:,.0f} records a batch", ">= 0.80, >= 1.25x",
            of_ceiling >= 0.8 and over_plain >= 1.25),
        Row("5 processor, nil sink (no parse, no views)", f["nil_sink_events_per_s"], "events/s",
            f"{own:.2f} of bare drain (mean of {f['nil_sink_drain_before_events_per_s']:,.0f} before, "
            f"{f['nil_sink_drain_after_events_per_s']:,.0f} after)", ">= 0.80", own >= 0.8),
        Row("5 (reference) processor, Null landing table", f["null_landing_events_per_s"], "events/s",
            f"{f['null_landing_vs_drain_and_null_insert']:.2f} of drain and Null insert composed"),
        Row(f"5 processor restarted over {f['restart_stored_events']:,.0f} stored events",
            f["restart_drain_events_per_s"], "events/s",
            f"{restart:.2f} of a fresh one (mean of {f['processor_events_per_s']:,.0f} before, "
            f"{f['fresh_again_events_per_s']:,.0f} after)", ">= 0.90", restart >= 0.9),
        Row(f"6 end to end p99 at {f['e2e_offered_per_s']:,.0f}/s", p99, "ms",
            f"p50 {f['e2e_p50_ms']:.0f} ms, {seen}", "< 1,000 ms", p99 < 1000 and all_seen),
    ]  # fmt: skip


async def run(sizes: Sizes, workdir: Path, ingest_only: bool = False) -> tuple[list[Row], Figures]:
    """Every measurement; ``ingest_only``: measurements 1-3 (producer ceiling, ingest, baseline) and 8."""
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
        values = [value for _, value in work.records]
        set_aside()

        log(f"1 producer ceiling: {n:,} records")
        ceiling_s = await producer.produce(bootstrap, "bench.status", work.records)
        producer_rate = n / ceiling_s
        # A tail past the n measured records: the processor fills its last measured batch from it, as it
        # would from a live stream, instead of waiting batch_wait_ms for records a finite topic never gets.
        await producer.produce(bootstrap, "bench.status", work.records[: Settings().batch_max_records])
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
        flood_figures = await flood.measure(bootstrap, "bench.flood", Settings().max_batch_elements)
        pin(SERVER_CORE)
        figures = {
            **_ingest_figures(producer_rate, batches_ceiling, runs),
            **_flood_figures(flood_figures),
        }
        if ingest_only:
            return [*_ingest_rows(figures), *_flood_rows(flood_figures)], figures

        settings = Settings(
            data_dir=workdir, kafka_bootstrap=bootstrap, clickhouse_url=f"chdb://{workdir / 'chdb'}",
            partitions=PARTITIONS, metrics_port=0,
        )  # fmt: skip
        client = connect(settings.clickhouse_dsn())
        stores = {}
        for database in ("bench_ceiling", "bench_processor", "bench_restart", "bench_e2e"):
            stores[database] = ClickHouseStore(client, database)
            stores[database].migrate()
        proc_settings = processor.bench_settings(settings, "bench.status")
        batch, wait_ms = proc_settings.batch_max_records, proc_settings.batch_wait_ms

        async def bare_drain_rate() -> float:
            return n / await ceiling.bare_drain(bootstrap, "bench.status", n, batch, wait_ms)

        log(f"4 bare drain: {n:,} records, batches of {batch:,}")
        drain_rate = await bare_drain_rate()
        log(f"4 bare byte insert: {n:,} values")
        insert_rate = n / ceiling.byte_insert(stores["bench_ceiling"], values, batch)
        discard(client, "bench_ceiling")
        log(f"4 plain consumer: {n:,} records")
        plain.create_table(client, "bench_plain", like="bench_processor")
        plain_rate = n / await plain.drain(
            client, "bench_plain", bootstrap, "bench.status", n, batch, wait_ms
        )
        discard(client, "bench_plain")

        log(f"5 processor: draining {n:,} records")
        drained = await processor.drain(proc_settings, bootstrap, stores["bench_processor"], n)
        proc_rate, (_, stats, collector) = processor.rate(drained), drained
        discard(client, "bench_processor")
        log(f"4 bare byte insert, Null table without views: {n:,} values")
        null_rate = n / ceiling.byte_insert(processor.null_landing(client, "bench_null"), values, batch)
        discard(client, "bench_null")
        # The nil sink is judged against bare drains right before and right after it, as the restart
        # is against fresh drains: load moving on the machine between them moves both sides.
        log(f"5 processor, nil sink: draining {n:,} records between two bare drains")
        nil = processor.nil_sink(client, "bench_nil")
        drain_before = await bare_drain_rate()
        nil_settings = processor.bench_settings(settings, "bench.status")
        nil_drained = await processor.drain(nil_settings, bootstrap, nil, n)
        nil_rate, nil_stats = processor.rate(nil_drained), nil_drained[1]
        drain_after = await bare_drain_rate()
        discard(client, "bench_nil")
        log(f"5 processor, Null landing table: draining {n:,} records")
        null_settings = processor.bench_settings(settings, "bench.status")
        null_store = processor.null_landing(client, "bench_null_landing")
        null_landing_rate = processor.rate(await processor.drain(null_settings, bootstrap, null_store, n))
        discard(client, "bench_null_landing")
        log(f"5 restart: storing {sizes.stored_events:,} events")
        stored = processor.fill(stores["bench_restart"], values, sizes.stored_events, batch)
        log(f"5 restart: draining {n:,} records over {stored:,} stored events")
        restart_settings = processor.bench_settings(settings, "bench.status")
        restart_rate = processor.rate(
            await processor.drain(restart_settings, bootstrap, stores["bench_restart"], n)
        )
        discard(client, "bench_restart")
        # A fresh drain again, right after: the restart is judged against the fresh drains on either
        # side of it, so that load moving on the machine between them moves both.
        log(f"5 processor again, fresh: draining {n:,} records")
        again = ClickHouseStore(client, "bench_fresh_again")
        again.migrate()
        again_settings = processor.bench_settings(settings, "bench.status")
        fresh_again_rate = processor.rate(await processor.drain(again_settings, bootstrap, again, n))
        discard(client, "bench_fresh_again")

        log(f"6 end to end: {sizes.e2e_rate:,.0f} events/s for {sizes.e2e_seconds}s")
        pin(LOAD_CORE)  # the processor shares the load core; ingest has the server core
        e2e_settings = processor.bench_settings(settings, "bench.e2e", **e2e.LATENCY_SETTINGS)
        latency = await e2e.measure(
            e2e_settings, bootstrap, stores["bench_e2e"], workdir, sizes.e2e_rate, sizes.e2e_seconds
        )
        pin(SERVER_CORE)

    composed = ceiling.composed(drain_rate, insert_rate)
    figures.update({
        "bare_drain_events_per_s": drain_rate,
        "byte_insert_events_per_s": insert_rate,
        "ceiling_events_per_s": composed,
        "plain_consumer_events_per_s": plain_rate,
        "processor_events_per_s": proc_rate,
        "processor_vs_ceiling": _ratio(proc_rate, composed),
        "processor_vs_plain_consumer": _ratio(proc_rate, plain_rate),
        "processor_gc_collections": collector.collections,
        "processor_gc_ms": collector.seconds * 1000,
        "processor_records_per_batch": _ratio(stats.records, stats.batches),
        "nil_sink_records_per_batch": _ratio(nil_stats.records, nil_stats.batches),
        "null_insert_events_per_s": null_rate,
        "nil_sink_events_per_s": nil_rate,
        "null_landing_events_per_s": null_landing_rate,
        "null_landing_vs_drain_and_null_insert": _ratio(
            null_landing_rate, ceiling.composed(drain_rate, null_rate)
        ),
        "nil_sink_drain_before_events_per_s": drain_before,
        "nil_sink_drain_after_events_per_s": drain_after,
        "processor_own_vs_bare_drain": _ratio(nil_rate, (drain_before + drain_after) / 2),
        "restart_stored_events": stored,
        "restart_drain_events_per_s": restart_rate,
        "fresh_again_events_per_s": fresh_again_rate,
        "restart_drain_vs_fresh": _ratio(restart_rate, (proc_rate + fresh_again_rate) / 2),
        "e2e_offered_per_s": latency.offered_per_s,
        "e2e_p50_ms": latency.p50_ms,
        "e2e_p99_ms": latency.p99_ms,
        "e2e_acknowledged": latency.acknowledged,
        "e2e_visible": latency.visible,
    })  # fmt: skip
    rows = [*_ingest_rows(figures), *_flood_rows(flood_figures), *_processor_rows(figures)]
    return rows, figures


def main(sizes: Sizes, keep: bool = False, ingest_only: bool = False, json_path: Path | None = None) -> int:
    """Run the bench, print the table; ``json_path``: also write every figure there (stable keys)."""
    from mailpulse.runtime import run_async

    with contextlib.ExitStack() as stack:
        workdir = (
            Path(tempfile.mkdtemp(prefix="mailpulse-bench-"))
            if keep
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mailpulse-bench-")))
        )
        started = time.monotonic()
        rows, figures = run_async(run(sizes, workdir, ingest_only))
        took = time.monotonic() - started
        print(render(rows))
        print(
            f"\n{describe()}."
            "\nProcesses: this runner (producer loop, drains, inserts, processor), one server under test at a"
            f" time, the load generator, the Tansu broker. Took {took:.0f}s."
        )
    if json_path is not None:
        document = {
            **figures,
            "sizes": asdict(sizes),
            "cores": describe(),
            "took_s": took,
            "rows": [asdict(row) for row in rows],
        }
        json_path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return 0
