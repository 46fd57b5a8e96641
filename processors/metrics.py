"""Prometheus metrics of the processors (process-wide, default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter("mailpulse_processor_records", "Kafka records taken into batches by processors")
LOADED = Counter("mailpulse_processor_loaded_records", "Record values ClickHouse took (parsed and merged)")
DEAD_LETTERS = Counter("mailpulse_processor_dead_letters", "Records sent to the dead-letter topic")
COMMIT_FAILURES = Counter(
    "mailpulse_processor_commit_failures", "Offset commits refused (group rebalanced); the next owner replays"
)
LOAD_FAILURES = Counter("mailpulse_processor_load_failures", "ClickHouse loads that failed and were retried")
BATCH_EVENTS = Histogram(
    "mailpulse_processor_batch_events",
    "Records per batch loaded into ClickHouse",
    buckets=(1, 10, 100, 1_000, 5_000, 10_000, 20_000, 50_000),
)
LOAD_SECONDS = Histogram(
    "mailpulse_processor_load_seconds",
    "Duration of one batch: record, insert (bisection included), dead letters",
)
LAG = Gauge("mailpulse_processor_lag", "Records not yet committed, per partition", ["partition"])
