"""13: deliverability signals in ``message_minute``: blocks and bounce classifications.

- A status bit ``BLOCKED`` (bit 18, appended to migration 6's ``STATUS_BITS``): set by a bounce of type
  ``blocked`` (raw type ``blocked``), so a block counts apart from other bounces. Spam reports,
  unsubscribes and deferrals already have their bits (their event kinds).
- A key column ``bounce_classification`` (SendGrid's ``bounce_classification``, '' when the event has
  none), added at the end of the sort key: a bounced message has its bounce's row under its
  classification, every other row under ''. OR-ing a message's rows still gives its statuses; a
  breakdown by classification takes each message's largest classification (any non-empty one).

The view feeding ``message_minute`` is replaced without a gap: the new view is created first, then the
old one dropped; an insert seen by both writes bits OR-ed twice, which changes nothing. Existing data
keeps its rows; the backfill adds the rows only blocks and classified bounces give (the same OR argument
makes a re-run harmless). The SQL is written out here: a migration is history and does not follow later
changes to live code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.tables import on_cluster

if TYPE_CHECKING:
    from schemas.migrations import SchemaOptions

VERSION = 13
NAME = "signals"

# Stored data: bit i of ``statuses`` is ``STATUS_BITS[i]``. Migration 6's bits, then BLOCKED. Append only.
STATUS_BITS: tuple[str, ...] = (
    "SCHEDULED", "QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "OPENED", "FAILED", "CANCELED", "INBOUND",
    "DEFERRED", "CLICK", "SPAMREPORT", "UNSUBSCRIBE", "GROUP_UNSUBSCRIBE", "GROUP_RESUBSCRIBE",
    "ACCOUNT_STATUS_CHANGE", "OPERATION", "UNKNOWN", "BLOCKED",
)  # fmt: skip

_NAMES = "[" + ", ".join(f"'{s}'" for s in STATUS_BITS[:-1]) + "]"
_BIT = f"indexOf({_NAMES}, if(kind = 'status', status, upper(kind)))"
_BLOCKED = f"if(raw_type = 'blocked', toUInt32({1 << STATUS_BITS.index('BLOCKED')}), toUInt32(0))"
_BIT_VALUE = f"bitOr(if({_BIT} = 0, toUInt32(0), bitShiftLeft(toUInt32(1), {_BIT} - 1)), {_BLOCKED})"
_COLUMNS = """toStartOfMinute(occurred_at) AS minute,
  message_id,
  provider,
  sender_domain,
  recipient_domain,
  arraySort(arrayMap((k, v) -> concat(k, '=', v), mapKeys(tags), mapValues(tags))) AS tags,
  ifNull(bounce_classification, '') AS bounce_classification"""
_KEY = "minute, message_id, provider, sender_domain, recipient_domain, tags, bounce_classification"

SELECT = f"""SELECT
  {_COLUMNS},
  groupBitOr({_BIT_VALUE}) AS statuses
FROM {{source}}
GROUP BY {_KEY}"""

# Only the rows migration 6's view did not write: blocks and classified bounces. One row per event.
BACKFILL = f"""SELECT
  {_COLUMNS},
  {_BIT_VALUE} AS statuses
FROM {{source}}
WHERE raw_type = 'blocked' OR isNotNull(bounce_classification)"""


def statements(opts: SchemaOptions) -> list[str]:
    db, on = opts.database, on_cluster(opts.cluster)
    source = f"{db}.email_events"
    return [
        f"ALTER TABLE {db}.message_minute{on} "
        "ADD COLUMN IF NOT EXISTS bounce_classification LowCardinality(String) AFTER tags, "
        f"MODIFY ORDER BY ({_KEY})",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.message_minute_signals_mv{on} "
        f"TO {db}.message_minute AS " + SELECT.format(source=source),
        f"DROP VIEW IF EXISTS {db}.message_minute_mv{on}",
        f"INSERT INTO {db}.message_minute " + BACKFILL.format(source=source),
    ]
