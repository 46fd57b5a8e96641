"""2: per-minute rollup of distinct messages by status, provider, sender/recipient domain and tag.

The rollup keeps ``uniqExact`` states of message ids, not counts: adding the same event twice (a crash
replay, a rebalance overlap, the backfill below running again) adds nothing, so rollup figures equal the
deduplicated ``events`` view exactly, however often a row was physically inserted. A message with several
tags appears once per tag; merging states across tags still counts it once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.migrations.ddl import fed_by_events, on_cluster, table_engine

if TYPE_CHECKING:
    from storage.migrations import SchemaOptions

VERSION = 2
NAME = "rollups"

# What a row of email_events contributes to the rollup (one row per tag, '' when untagged).
ROLLUP_SELECT = """SELECT
  toStartOfMinute(occurred_at) AS minute,
  if(kind = 'status', status, upper(kind)) AS status,
  provider,
  sender_domain,
  recipient_domain,
  arrayJoin(if(empty(tags), [''], arrayMap((k, v) -> concat(k, '=', v), mapKeys(tags), mapValues(tags))))
    AS tag,
  uniqExactState(message_id) AS messages
FROM {source}
GROUP BY minute, status, provider, sender_domain, recipient_domain, tag"""


def statements(opts: SchemaOptions) -> list[str]:
    db, on = opts.database, on_cluster(opts.cluster)
    engine = table_engine(db, "rollup_minute", "AggregatingMergeTree", opts.cluster)
    return [
        f"""CREATE TABLE IF NOT EXISTS {db}.rollup_minute{on} (
  minute DateTime('UTC'),
  status LowCardinality(String),
  provider LowCardinality(String),
  sender_domain LowCardinality(String),
  recipient_domain LowCardinality(String),
  tag String,
  messages AggregateFunction(uniqExact, String)
) ENGINE = {engine}
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, status, sender_domain, recipient_domain, tag, provider)""",
        # Then the backfill of what was loaded before; idempotent states make a rerun harmless.
        *fed_by_events(db, opts.cluster, "rollup_minute", ROLLUP_SELECT),
    ]
