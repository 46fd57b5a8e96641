"""10: ClickHouse does the per-event work. The processor inserts the raw Kafka values (envelope v2, one
JSON object per line) into ``email_events_in``, a Null table: nothing is stored there, its materialized
views fill the tables (see docs/engine.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.event import Provider, Source
from schemas.status import EmailStatus, EventKind
from schemas.tables import on_cluster

if TYPE_CHECKING:
    from enum import StrEnum

    from schemas.migrations import SchemaOptions

VERSION = 10
NAME = "engine_merge"


def _enum(values: type[StrEnum]) -> str:
    # Enum8 columns make the parse refuse a value the model does not know, as pydantic did.
    return "Enum8(" + ", ".join(f"'{v.value}' = {i}" for i, v in enumerate(values, 1)) + ")"


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
  kind {_enum(EventKind)},
  status Nullable({_enum(EmailStatus)}),
  raw_type String,
  occurred_at {ts},
  received_at {ts},
  source {_enum(Source)},
  provider {_enum(Provider)},
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
  CONSTRAINT status_iff_kind_status CHECK (kind = 'status') = isNotNull(status)
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


def statements(opts: SchemaOptions) -> list[str]:
    db, on = opts.database, on_cluster(opts.cluster)
    landing = f"{db}.email_events_in"
    return [
        landing_table(db, opts.cluster),
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.email_events_in_mv{on} TO {db}.email_events AS "
        + EVENTS_SELECT.format(source=landing),
    ]
