"""11: ClickHouse does the per-event work. The processor inserts the raw Kafka values (envelope v2, one
JSON object per line) into ``email_events_in``, a Null table: nothing is stored there, its materialized
views fill the tables (see docs/engine.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.migrations.ddl import dedup_settings, fed_by_events, on_cluster, table_engine

if TYPE_CHECKING:
    from storage.migrations import SchemaOptions

VERSION = 11
NAME = "engine_merge"

# The model's values as this migration was released with them (schemas/ may change; this file never does).
_EVENT_KINDS = (
    "status", "deferred", "click", "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe",
    "account_status_change", "operation", "unknown",
)  # fmt: skip
_STATUSES = (
    "SCHEDULED",
    "QUEUED",
    "SENT",
    "DELIVERED",
    "UNDELIVERED",
    "OPENED",
    "FAILED",
    "CANCELED",
    "INBOUND",
)
_PRECEDENCE = {
    "SCHEDULED": 10, "QUEUED": 20, "CANCELED": 30, "FAILED": 40, "SENT": 50, "DELIVERED": 60,
    "UNDELIVERED": 70, "OPENED": 80, "INBOUND": 90,
}  # fmt: skip
_FAILURE_STATUSES = ("UNDELIVERED", "FAILED", "CANCELED")
_SOURCES = ("webhook", "poller", "inbound")
_PROVIDERS = ("twilio", "sendgrid")


def _enum(values: tuple[str, ...]) -> str:
    # Enum8 columns make the parse refuse a value the model does not know, as pydantic did.
    return "Enum8(" + ", ".join(f"'{v}' = {i}" for i, v in enumerate(values, 1)) + ")"


def landing_table(db: str, cluster: str | None) -> str:
    """The v2 envelope's fields, in ``CanonicalEvent`` order. JSON null reads as the column default
    (input_format_null_as_default) where the stored column is not Nullable; ``inbound`` is the nested
    object kept as its JSON text. The constraints refuse what the JSON parse alone would let through."""
    ts = "DateTime64(3, 'UTC')"
    return f"""CREATE TABLE IF NOT EXISTS {db}.email_events_in{on_cluster(cluster)} (
  v UInt8,
  dedupe_key String,
  event_id String,
  message_id String,
  provider_message_id Nullable(String),
  operation_id Nullable(String),
  kind {_enum(_EVENT_KINDS)},
  status Nullable({_enum(_STATUSES)}),
  raw_type String,
  occurred_at {ts},
  received_at {ts},
  source {_enum(_SOURCES)},
  provider {_enum(_PROVIDERS)},
  recipient Nullable(String),
  recipient_domain String,
  sender Nullable(String),
  sender_domain String,
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
  inbound Nullable(String),
  CONSTRAINT envelope_v2 CHECK v = 2,
  CONSTRAINT dedupe_key_hex CHECK length(dedupe_key) = 32,
  CONSTRAINT ids CHECK message_id != '' AND event_id != '' AND raw_type != '',
  CONSTRAINT status_iff_kind_status CHECK (kind = 'status') = isNotNull(status),
  -- A missing time reads as the column default, the epoch: no real event is stamped with it.
  CONSTRAINT times_present CHECK occurred_at != 0 AND received_at != 0
) ENGINE = Null"""


# A landing row as an email_events row. Kafka positions are not in the value, and adding them would take
# per-record Python: kafka_partition and kafka_offset keep their defaults (0) from this release on.
EVENTS_SELECT = """SELECT
  message_id, dedupe_key, event_id, provider_message_id, operation_id,
  CAST(kind, 'String') AS kind,
  ifNull(CAST(status, 'Nullable(String)'), '') AS status,
  raw_type, occurred_at, received_at,
  CAST(source, 'String') AS source,
  CAST(provider, 'String') AS provider,
  recipient, recipient_domain, sender, sender_domain, tags, custom_args, categories, reason, smtp_status,
  bounce_type, bounce_classification, attempt, machine_open, url,
  JSONExtract(ifNull(inbound, ''), 'recipients', 'Array(String)') AS inbound_recipients,
  JSONExtract(ifNull(inbound, ''), 'subject', 'Nullable(String)') AS subject,
  JSONExtract(ifNull(inbound, ''), 'spam_score', 'Nullable(Float64)') AS spam_score,
  JSONExtract(ifNull(inbound, ''), 'spf', 'Nullable(String)') AS spf,
  JSONExtract(ifNull(inbound, ''), 'dkim', 'Nullable(String)') AS dkim,
  if(inbound IS NULL, '', JSONExtractRaw(inbound, 'attachments')) AS attachments
FROM {source}"""


_TS = "DateTime64(3, 'UTC')"
_FAILURES = ", ".join(f"'{s}'" for s in _STATUSES if s in _FAILURE_STATUSES)
_NON_EMAIL = "'operation', 'account_status_change'"
_FILL = {"ts": _TS, "failures": _FAILURES, "non_email": _NON_EMAIL}
# The dedupe key's 16 bytes as one number: uniqExact keeps UInt128 values as they are (no hashing), so
# a count is of distinct keys, exactly.
_KEY = "reinterpretAsUInt128(unhex(dedupe_key))"
_RICHNESS = "(isNotNull(recipient) + isNotNull(sender) + notEmpty(tags) + isNotNull(operation_id))"
# "The value of the smallest event" as a plain min over (order, value) tuples: no aggregate state to
# (de)serialize, a comparison to merge. The order is packed into two numbers with the same order as
# the pure core's tuple: the high bit sorts the events that may be chosen at all first, then what the
# order puts before the time (4 - richness for the describing event), then epoch milliseconds (< 2^44
# up to year 2200); the dedupe key's 32 hex digits read big-endian sort as the text does.
_TIE = "reinterpretAsUInt128(reverse(unhex(dedupe_key)))"
_MS = "toUInt64(toUnixTimestamp64Milli(occurred_at))"
_DESCRIBING_ORDER = (
    f"tuple(bitShiftLeft(toUInt64(kind IN ({_NON_EMAIL})), 63) + bitShiftLeft(toUInt64(4 - {_RICHNESS}), 56)"
    f" + {_MS}, {_TIE})"
)
_FAILURE_ORDER = f"tuple(bitShiftLeft(toUInt64(status NOT IN ({_FAILURES})), 63) + {_MS}, {_TIE})"
# Each describing field is a column of its own, so a query reads only the ones it needs; every column
# takes its value from the same event (the order is the same). All are Strings: the order's 24 bytes
# big-endian (so bytewise order is the order), then the value (JSON where it is not one string). A
# String min aggregates and merges far faster than a min of tuples, which compares generic values.
_ORDER_BYTES = "concat(reverse(reinterpretAsFixedString({order}.1)), unhex(dedupe_key))"
_ORDER_LENGTH = 24
_DESCRIBING_BYTES = _ORDER_BYTES.format(order=_DESCRIBING_ORDER)
_KEYED = {  # column -> the value after the order bytes
    "provider_of": "provider",
    "recipient_domain_of": "recipient_domain",
    "sender_domain_of": "sender_domain",
    "tags_of": "toJSONString(tags)",
    "parties_of": "toJSONString(tuple(operation_id, recipient, sender))",
}
_PARTIES = "Tuple(Nullable(String), Nullable(String), Nullable(String))"
_FAILURE_FIELDS = "Tuple(Nullable(String), Nullable(String))"
_COUNTS = {  # column -> the events it counts (distinct dedupe keys)
    "open_keys": "status = 'OPENED'",
    "machine_open_keys": "status = 'OPENED' AND ifNull(machine_open, false)",
    "click_keys": "kind = 'click'",
    "deferred_keys": "kind = 'deferred'",
}
_RANK = (
    "transform(status, ["
    + ", ".join(f"'{s}'" for s in _STATUSES)
    + "], ["
    + ", ".join(str(_PRECEDENCE[s]) for s in _STATUSES)
    + "], 0)"
)


# What a block of email_events rows adds to email_state_agg, per message: the view runs it on every
# insert into email_events, the backfill on the whole table. Every column is idempotent (min, max,
# uniqExact of keys, min of (order, value) tuples), so a row seen twice changes nothing. Non-email
# kinds (operation, account status change) count as events of their id but describe nothing and give
# no message on their own (``has_email``), as in the pure core the processor used.
STATE_SELECT = f"""SELECT
  message_id,
  max(kind NOT IN ({_NON_EMAIL})) AS has_email,
  max(toUInt8({_RANK})) AS status_rank,
  {", ".join(f"min(concat({_DESCRIBING_BYTES}, {v})) AS {name}" for name, v in _KEYED.items())},
  {", ".join(f"minIfOrNull(occurred_at, status = '{s}') AS {s.lower()}_at" for s in _STATUSES)},
  {", ".join(f"uniqExactIfState({_KEY}, {c}) AS {name}" for name, c in _COUNTS.items())},
  uniqExactState({_KEY}) AS event_keys,
  min(occurred_at) AS first_event_at,
  max(occurred_at) AS last_event_at,
  min(concat({_ORDER_BYTES.format(order=_FAILURE_ORDER)}, toJSONString(tuple(reason, bounce_type))))
    AS failure
FROM {{source}}
GROUP BY message_id"""


def state_table(db: str, cluster: str | None) -> str:
    engine = table_engine(db, "email_state_agg", "AggregatingMergeTree", cluster)
    described = ",\n  ".join(f"{name} SimpleAggregateFunction(min, String)" for name in _KEYED)
    times = ",\n  ".join(f"{s.lower()}_at SimpleAggregateFunction(min, Nullable({_TS}))" for s in _STATUSES)
    counts = ",\n  ".join(
        f"{name} AggregateFunction(uniqExact, UInt128)" for name in (*_COUNTS, "event_keys")
    )
    return f"""CREATE TABLE IF NOT EXISTS {db}.email_state_agg{on_cluster(cluster)} (
  message_id String,
  has_email SimpleAggregateFunction(max, UInt8),
  status_rank SimpleAggregateFunction(max, UInt8),
  {described},
  {times},
  {counts},
  first_event_at SimpleAggregateFunction(min, {_TS}),
  last_event_at SimpleAggregateFunction(max, {_TS}),
  failure SimpleAggregateFunction(min, String)
) ENGINE = {engine}
ORDER BY message_id{dedup_settings(cluster)}"""


def _value(column: str, json_type: str = "") -> str:
    """The value of an (order bytes, value) String column; JSON read as ``json_type`` when given. A high
    first byte (the may-not-be-chosen bit) means no event qualified: callers check that first."""
    value = f"substring({column}, {_ORDER_LENGTH + 1})"
    return f"JSONExtract({value}, '{json_type}')" if json_type else value


def messages_view(db: str, cluster: str | None) -> str:
    """``messages``: one merged row per message, email_state's columns and types (STATE_COLUMNS). FINAL
    merges the rows of a message at read time, in key order, streaming: an order of magnitude faster
    than a GROUP BY over message ids, and a filter on message_id still reads only its granules."""
    time_columns = ", ".join(f"{s.lower()}_at" for s in _STATUSES)
    events = "finalizeAggregation(event_keys)"
    return f"""CREATE OR REPLACE VIEW {db}.messages{on_cluster(cluster)} AS
SELECT
  message_id,
  CAST({_value("provider_of")}, 'LowCardinality(String)') AS provider,
  CAST({_STATUS_OF_RANK.format(rank="status_rank")}, 'LowCardinality(String)') AS status,
  {_value("parties_of", _PARTIES)}.1 AS operation_id,
  {_value("parties_of", _PARTIES)}.2 AS recipient,
  CAST({_value("recipient_domain_of")}, 'LowCardinality(String)') AS recipient_domain,
  {_value("parties_of", _PARTIES)}.3 AS sender,
  CAST({_value("sender_domain_of")}, 'LowCardinality(String)') AS sender_domain,
  {_value("tags_of", "Map(String, String)")} AS tags,
  {time_columns},
  toUInt32(finalizeAggregation(open_keys)) AS open_count,
  toUInt32(finalizeAggregation(machine_open_keys)) AS machine_open_count,
  toUInt32(finalizeAggregation(click_keys)) AS click_count,
  toUInt32(finalizeAggregation(deferred_keys)) AS deferred_count,
  toUInt32({events}) AS event_count,
  first_event_at,
  last_event_at,
  if(failure < unhex('80'), {_value("failure", _FAILURE_FIELDS)}.1, NULL) AS failure_reason,
  if(failure < unhex('80'), {_value("failure", _FAILURE_FIELDS)}.2, NULL) AS bounce_type,
  toUInt64({events}) AS version
FROM {db}.email_state_agg FINAL
WHERE has_email"""


_STATUS_OF_RANK = (
    "transform({rank}, ["
    + ", ".join(str(_PRECEDENCE[s]) for s in _STATUSES)
    + "], ["
    + ", ".join(f"'{s}'" for s in _STATUSES)
    + "], '')"
)


def transitions_view(db: str, cluster: str | None) -> str:
    """``transitions``: every distinct status event of a message in event-time order (ties by dedupe
    key) with the status before and after it, computed from the stored events: exact whatever the
    arrival order. ``late``: a status event that follows it in that order was received before it."""
    return f"""CREATE OR REPLACE VIEW {db}.transitions{on_cluster(cluster)} AS
SELECT
  message_id, occurred_at, dedupe_key, event_id, status,
  CAST({_STATUS_OF_RANK.format(rank="before")}, 'LowCardinality(String)') AS previous_status,
  CAST({_STATUS_OF_RANK.format(rank="greatest(before, rank)")}, 'LowCardinality(String)') AS current_status,
  received_at > ifNull(received_after, received_at) AS late,
  provider, source, kafka_partition, kafka_offset
FROM (
  SELECT *, {_RANK} AS rank,
    ifNull(max(rank) OVER (PARTITION BY message_id ORDER BY occurred_at, dedupe_key
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before,
    minOrNull(received_at) OVER (PARTITION BY message_id ORDER BY occurred_at, dedupe_key
      ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS received_after
  FROM {db}.email_events FINAL
  WHERE kind = 'status'
)"""


def statements(opts: SchemaOptions) -> list[str]:
    db, on = opts.database, on_cluster(opts.cluster)
    landing = f"{db}.email_events_in"
    return [
        landing_table(db, opts.cluster),
        state_table(db, opts.cluster),
        # Before the landing view exists nothing reaches email_events through it: the backfill of the
        # state below sees every event loaded the old way, the view every event loaded from now on.
        *fed_by_events(db, opts.cluster, "email_state_agg", STATE_SELECT, STATE_SELECT + BACKFILL_SETTINGS),
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.email_events_in_mv{on} TO {db}.email_events AS "
        + EVENTS_SELECT.format(source=landing),
        messages_view(db, opts.cluster),
        transitions_view(db, opts.cluster),
        f"""CREATE OR REPLACE VIEW {db}.message_latency{on} AS
SELECT message_id, provider, sender_domain, recipient_domain, tags, status,
  queued_at, sent_at, delivered_at, opened_at,
  dateDiff('millisecond', coalesce(sent_at, queued_at), delivered_at) AS time_to_deliver_ms,
  dateDiff('millisecond', delivered_at, opened_at) AS time_to_open_ms
FROM {db}.messages""",
    ]


# email_events is sorted by message_id: grouping in that order streams, one message at a time.
BACKFILL_SETTINGS = "\nSETTINGS optimize_aggregation_in_order = 1"
