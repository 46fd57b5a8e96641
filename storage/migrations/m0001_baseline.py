"""1: events, per-message state, transitions and the FINAL views over them (the first release)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.migrations.ddl import dedup_settings, on_cluster, table_engine

if TYPE_CHECKING:
    from storage.migrations import SchemaOptions

VERSION = 1
NAME = "baseline"

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


def statements(opts: SchemaOptions) -> list[str]:
    database, cluster = opts.database, opts.cluster
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
