"""11: ``processor_batches``: the offset ranges of the batch a processor is about to insert, written before
the insert. A processor that takes a partition over loads the recorded batch again, exactly (same ranges,
same insert deduplication token), before anything new: a batch whose insert landed but whose offsets were
not committed is then dropped by ClickHouse, not loaded twice. One row per (group, topic, partition),
the latest kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.migrations.ddl import on_cluster, table_engine

if TYPE_CHECKING:
    from storage.migrations import SchemaOptions

VERSION = 12
NAME = "processor_batches"


def statements(opts: SchemaOptions) -> list[str]:
    db, on = opts.database, on_cluster(opts.cluster)
    engine = table_engine(db, "processor_batches", "ReplacingMergeTree", opts.cluster, "recorded_at")
    return [
        f"""CREATE TABLE IF NOT EXISTS {db}.processor_batches{on} (
  consumer_group String,
  topic String,
  partition UInt32,
  start UInt64,
  ranges String,
  recorded_at DateTime64(6, 'UTC')
) ENGINE = {engine}
ORDER BY (consumer_group, topic, partition)"""
    ]
