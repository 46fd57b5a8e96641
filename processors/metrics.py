"""Prometheus metrics of the processors (process-wide, default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter("mailpulse_processor_records", "Kafka records consumed by processors")
LOADED = Counter("mailpulse_processor_loaded_events", "Distinct events loaded into ClickHouse")
DUPLICATES = Counter("mailpulse_processor_duplicates", "Events dropped as duplicates (same dedupe key)")
LATE = Counter("mailpulse_processor_late_events", "Events that arrived behind their partition's watermark")
DEAD_LETTERS = Counter("mailpulse_processor_dead_letters", "Records sent to the dead-letter topic")
COMMIT_FAILURES = Counter(
    "mailpulse_processor_commit_failures", "Offset commits refused (group rebalanced); the next owner replays"
)
LOAD_FAILURES = Counter("mailpulse_processor_load_failures", "ClickHouse loads that failed and were retried")
TRANSITIONS = Counter("mailpulse_processor_transitions", "Status transitions emitted")
BATCH_EVENTS = Histogram(
    "mailpulse_processor_batch_events",
    "Events per ClickHouse load",
    buckets=(1, 10, 100, 1_000, 5_000, 10_000, 20_000, 50_000),
)
LOAD_SECONDS = Histogram("mailpulse_processor_load_seconds", "Duration of one merge + ClickHouse load")
BUFFERED = Gauge("mailpulse_processor_reorder_buffered", "Events waiting in reorder buffers")
LAG = Gauge("mailpulse_processor_lag", "Records not yet committed, per partition", ["partition"])
