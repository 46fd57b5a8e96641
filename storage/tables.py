"""ClickHouse table definitions for the mailpulse database.

email_events and email_state are ReplacingMergeTree tables whose sort key is the row's identity, so a
replayed row can never be counted twice once merged; the views ``events`` and ``messages`` read them
with FINAL so analysts always see exactly one row per distinct event / per message without writing
FINAL themselves. Insert deduplication tokens (see processors) stop replays even before a merge.
"""

from __future__ import annotations

DATABASE = "mailpulse"
# Non-replicated MergeTree only honours insert_deduplication_token with a window set (docs/design.md).
DEDUP_WINDOW = 10_000

_STATUS_TIME_COLUMNS = (
    "scheduled_at", "queued_at", "sent_at", "delivered_at", "undelivered_at",
    "opened_at", "failed_at", "canceled_at", "inbound_at",
)  # fmt: skip

# Received mail (CanonicalEvent.inbound), added after the first release: ALTERed into older tables.
# ``attachments`` holds a JSON array of attachment metadata, '' when the event is not a received mail.
_INBOUND_COLUMN_TYPES: tuple[tuple[str, str], ...] = (
    ("inbound_recipients", "Array(String)"),
    ("subject", "Nullable(String)"),
    ("spam_score", "Nullable(Float64)"),
    ("spf", "LowCardinality(Nullable(String))"),
    ("dkim", "Nullable(String)"),
    ("attachments", "String"),
)
INBOUND_COLUMNS: tuple[str, ...] = tuple(name for name, _ in _INBOUND_COLUMN_TYPES)

EVENT_COLUMNS: tuple[str, ...] = (
    "message_id", "dedupe_key", "event_id", "provider_message_id", "operation_id", "kind", "status",
    "raw_type", "occurred_at", "received_at", "source", "provider", "recipient", "recipient_domain",
    "sender", "sender_domain", "tags", "custom_args", "categories", "reason", "smtp_status", "bounce_type",
    "bounce_classification", "attempt", "machine_open", "url", "kafka_partition", "kafka_offset",
    *INBOUND_COLUMNS,
)  # fmt: skip

TRANSITION_COLUMNS: tuple[str, ...] = (
    "message_id", "occurred_at", "dedupe_key", "event_id", "status", "previous_status", "current_status",
    "late", "provider", "source", "kafka_partition", "kafka_offset",
)  # fmt: skip

STATE_COLUMNS: tuple[str, ...] = (
    "message_id", "provider", "status", "operation_id", "recipient", "recipient_domain", "sender",
    "sender_domain", "tags", *_STATUS_TIME_COLUMNS, "open_count", "machine_open_count", "click_count",
    "deferred_count", "event_count", "first_event_at", "last_event_at", "failure_reason", "bounce_type",
    "version",
)  # fmt: skip


def on_cluster(cluster: str | None) -> str:
    return f" ON CLUSTER {cluster}" if cluster else ""


def table_engine(database: str, table: str, kind: str, cluster: str | None, *args: str) -> str:
    """``kind(args)``, or its Replicated form on a cluster (Keeper path per table, {replica} macro)."""
    if cluster:
        args = (f"'/clickhouse/tables/{{shard}}/{database}/{table}'", "'{replica}'", *args)
        kind = f"Replicated{kind}"
    return f"{kind}({', '.join(args)})"


def fed_by_events(
    database: str, cluster: str | None, table: str, select: str, backfill: str = ""
) -> list[str]:
    """A materialized view feeding ``table`` from every email_events insert (``select`` with a ``{source}``
    placeholder), then a backfill of what was loaded before it (``backfill``, default ``select``). Tables
    fed this way hold idempotent aggregates: rows both the view and the backfill see are harmless."""
    source, on = f"{database}.email_events", on_cluster(cluster)
    return [
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_mv{on} TO {database}.{table} AS "
        + select.format(source=source),
        f"INSERT INTO {database}.{table} " + (backfill or select).format(source=source),
    ]


def dedup_settings(cluster: str | None) -> str:
    # Replicated tables deduplicate inserts by default (replicated_deduplication_window).
    return "" if cluster else f"\nSETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}"


def ddl(database: str = DATABASE, cluster: str | None = None) -> list[str]:
    """Statements that create the database, tables and views (migration 1); each is idempotent.
    ``cluster`` adds ON CLUSTER and swaps in Replicated engines (one shard, N replicas)."""
    ts = "DateTime64(3, 'UTC')"
    on = on_cluster(cluster)

    def engine(table: str, kind: str, *args: str) -> str:
        return table_engine(database, table, kind, cluster, *args)

    dedup = dedup_settings(cluster)
    status_times = ",\n  ".join(f"{c} Nullable({ts})" for c in _STATUS_TIME_COLUMNS)
    inbound_columns = ",\n  ".join(f"{name} {kind}" for name, kind in _INBOUND_COLUMN_TYPES)
    add_inbound = [
        f"ALTER TABLE {database}.email_events{on} ADD COLUMN IF NOT EXISTS {name} {kind}"
        for name, kind in _INBOUND_COLUMN_TYPES
    ]
    return [
        f"CREATE DATABASE IF NOT EXISTS {database}{on}",
        f"""CREATE TABLE IF NOT EXISTS {database}.email_events{on} (
  message_id String,
  dedupe_key String,
  event_id String,
  provider_message_id Nullable(String),
  operation_id Nullable(String),
  kind LowCardinality(String),
  status LowCardinality(String),
  raw_type LowCardinality(String),
  occurred_at {ts},
  received_at {ts},
  source LowCardinality(String),
  provider LowCardinality(String),
  recipient Nullable(String),
  recipient_domain LowCardinality(String),
  sender Nullable(String),
  sender_domain LowCardinality(String),
  tags Map(String, String),
  custom_args Map(String, String),
  categories Array(String),
  reason Nullable(String),
  smtp_status Nullable(String),
  bounce_type Nullable(String),
  bounce_classification Nullable(String),
  attempt Nullable(UInt32),
  machine_open Nullable(Bool),
  url Nullable(String),
  kafka_partition UInt32,
  kafka_offset UInt64,
  {inbound_columns}
) ENGINE = {engine("email_events", "ReplacingMergeTree")}
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (message_id, dedupe_key){dedup}""",
        *add_inbound,
        f"""CREATE TABLE IF NOT EXISTS {database}.email_state{on} (
  message_id String,
  provider LowCardinality(String),
  status LowCardinality(String),
  operation_id Nullable(String),
  recipient Nullable(String),
  recipient_domain LowCardinality(String),
  sender Nullable(String),
  sender_domain LowCardinality(String),
  tags Map(String, String),
  {status_times},
  open_count UInt32,
  machine_open_count UInt32,
  click_count UInt32,
  deferred_count UInt32,
  event_count UInt32,
  first_event_at {ts},
  last_event_at {ts},
  failure_reason Nullable(String),
  bounce_type Nullable(String),
  version UInt64
) ENGINE = {engine("email_state", "ReplacingMergeTree", "version")}
ORDER BY message_id{dedup}""",
        f"""CREATE TABLE IF NOT EXISTS {database}.email_transitions{on} (
  message_id String,
  occurred_at {ts},
  dedupe_key String,
  event_id String,
  status LowCardinality(String),
  previous_status LowCardinality(String),
  current_status LowCardinality(String),
  late Bool,
  provider LowCardinality(String),
  source LowCardinality(String),
  kafka_partition UInt32,
  kafka_offset UInt64
) ENGINE = {engine("email_transitions", "ReplacingMergeTree")}
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (message_id, occurred_at, dedupe_key){dedup}""",
        f"CREATE VIEW IF NOT EXISTS {database}.transitions{on} AS "
        f"SELECT * FROM {database}.email_transitions FINAL",
        # OR REPLACE: a view fixes its columns when created; re-creating it shows columns added since.
        f"CREATE OR REPLACE VIEW {database}.events{on} AS SELECT * FROM {database}.email_events FINAL",
        f"CREATE VIEW IF NOT EXISTS {database}.messages{on} AS SELECT * FROM {database}.email_state FINAL",
    ]
