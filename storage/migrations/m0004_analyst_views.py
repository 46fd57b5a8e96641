"""4: ready-made, already deduplicated views for analysts (no FINAL, no aggregate states to know about).

- ``stats_hourly`` / ``stats_daily``: per hour/day x provider x sender domain x recipient domain, distinct
  messages per status, outcomes (delivered, undelivered or failed) and the rates of the API, merged from
  ``rollup_minute`` states (exact under duplicated rows; a message with two tags counts once).
- ``stats_daily_by_tag``: the same per day x tag ('key=value', '' = untagged).
- ``message_latency``: one row per message (latest state version) with time to deliver and time to open.

Views fix their columns when created, hence CREATE OR REPLACE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.migrations.ddl import on_cluster

if TYPE_CHECKING:
    from storage.migrations import SchemaOptions

VERSION = 4
NAME = "analyst_views"

_VOLUMES = ("QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "OPENED", "FAILED", "CANCELED", "CLICK")


def _stats(db: str, period: str, dims: str) -> str:
    volumes = ",\n  ".join(f"uniqExactMergeIf(messages, status = '{s}') AS {s.lower()}" for s in _VOLUMES)
    return f"""SELECT {period}, {dims},
  {volumes},
  uniqExactMergeIf(messages, status IN ('DELIVERED', 'UNDELIVERED', 'FAILED')) AS outcomes,
  uniqExactMergeIf(messages, status IN ('UNDELIVERED', 'FAILED')) AS failures,
  if(outcomes = 0, NULL, delivered / outcomes) AS delivery_rate,
  if(outcomes = 0, NULL, undelivered / outcomes) AS bounce_rate,
  if(outcomes = 0, NULL, failures / outcomes) AS failure_rate,
  if(delivered = 0, NULL, opened / delivered) AS open_rate
FROM {db}.rollup_minute
GROUP BY ALL"""


def statements(opts: SchemaOptions) -> list[str]:
    db, on = opts.database, on_cluster(opts.cluster)
    domains = "provider, sender_domain, recipient_domain"
    return [
        f"CREATE OR REPLACE VIEW {db}.stats_hourly{on} AS "
        + _stats(db, "toStartOfHour(minute) AS hour", domains),
        f"CREATE OR REPLACE VIEW {db}.stats_daily{on} AS " + _stats(db, "toDate(minute) AS day", domains),
        f"CREATE OR REPLACE VIEW {db}.stats_daily_by_tag{on} AS "
        + _stats(db, "toDate(minute) AS day", "tag"),
        f"""CREATE OR REPLACE VIEW {db}.message_latency{on} AS
SELECT message_id, provider, sender_domain, recipient_domain, tags, status,
  queued_at, sent_at, delivered_at, opened_at,
  dateDiff('millisecond', coalesce(sent_at, queued_at), delivered_at) AS time_to_deliver_ms,
  dateDiff('millisecond', delivered_at, opened_at) AS time_to_open_ms
FROM {db}.email_state FINAL""",
    ]
