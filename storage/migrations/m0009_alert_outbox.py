"""9: ``alert_outbox``: the delivery log of alert notifications, one row per step of one notification on
one channel (queued, failed attempt n, delivered, expired). A notification is pending while its
(rule, key, state, at, channel) has no delivered or expired row: an aggregate over plain rows, so reading
it needs no FINAL, and a step written twice (a retried insert) changes nothing. ``notification`` holds
the JSON sent, so a retry after a restart sends what the first attempt would have."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.migrations.ddl import on_cluster, table_engine

if TYPE_CHECKING:
    from storage.migrations import SchemaOptions

VERSION = 9
NAME = "alert_outbox"


def statements(opts: SchemaOptions) -> list[str]:
    db, on = opts.database, on_cluster(opts.cluster)
    engine = table_engine(db, "alert_outbox", "ReplacingMergeTree", opts.cluster)
    return [
        f"""CREATE TABLE IF NOT EXISTS {db}.alert_outbox{on} (
  at DateTime64(3, 'UTC'),
  rule LowCardinality(String),
  key String,
  state LowCardinality(String),
  channel LowCardinality(String),
  attempt UInt32,
  outcome LowCardinality(String),
  recorded_at DateTime64(3, 'UTC'),
  notification String,
  error String
) ENGINE = {engine}
PARTITION BY toYYYYMM(at)
ORDER BY (rule, key, state, at, channel, attempt, outcome)"""
    ]
