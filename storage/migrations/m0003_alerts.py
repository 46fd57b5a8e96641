"""3: the ``alerts`` table: every firing and resolve of a rule for one dimension key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.migrations.ddl import on_cluster, table_engine

if TYPE_CHECKING:
    from storage.migrations import SchemaOptions

VERSION = 3
NAME = "alerts"


def statements(opts: SchemaOptions) -> list[str]:
    db, on = opts.database, on_cluster(opts.cluster)
    engine = table_engine(db, "alerts", "ReplacingMergeTree", opts.cluster)
    # Keyed by (rule, key, state, at): writing the same transition twice (a retried insert) keeps one.
    return [
        f"""CREATE TABLE IF NOT EXISTS {db}.alerts{on} (
  at DateTime64(3, 'UTC'),
  rule LowCardinality(String),
  metric LowCardinality(String),
  dimension LowCardinality(String),
  key String,
  state LowCardinality(String),
  value Float64,
  threshold Float64,
  volume UInt64,
  window_s UInt32
) ENGINE = {engine}
PARTITION BY toYYYYMM(at)
ORDER BY (rule, key, state, at)"""
    ]
