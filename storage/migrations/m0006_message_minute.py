"""6: ``message_minute``, one row per message, minute and dimensions with the set of statuses seen as bits.

Why: distinct-message counts over a whole day merged ``uniqExact`` states of every (message, status) pair
(13M hash-set inserts for 10M events: ~2 s). Here a message contributes one row per minute it had events
in (4.9M rows for the same day), its statuses OR-ed into a bit set. A query ORs each message's rows in the
range (one hash-table entry per message, not per message and status) and counts the bits, so every status,
the outcomes (delivered, undelivered or failed) and the failures come out of one pass, exactly.

OR is idempotent, commutative and associative (``SimpleAggregateFunction(groupBitOr)``): a duplicated row,
a crash replay or the backfill below running again changes nothing, in any order — the same guarantee as
the ``uniqExact`` rollups. Dimensions are part of the key as each event carries them (a message whose
events name different sender domains has a row under each), tags as the sorted ``key=value`` list.

``STATUS_BITS`` is stored data: bit i of ``statuses`` is ``STATUS_BITS[i]``. Append only, never reorder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.migrations.ddl import fed_by_events, on_cluster, table_engine

if TYPE_CHECKING:
    from storage.migrations import SchemaOptions

VERSION = 6
NAME = "message_minute"

# Email statuses, then the other event kinds upper-cased (the rollups' status column, migration 2).
STATUS_BITS: tuple[str, ...] = (
    "SCHEDULED", "QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "OPENED", "FAILED", "CANCELED", "INBOUND",
    "DEFERRED", "CLICK", "SPAMREPORT", "UNSUBSCRIBE", "GROUP_UNSUBSCRIBE", "GROUP_RESUBSCRIBE",
    "ACCOUNT_STATUS_CHANGE", "OPERATION", "UNKNOWN",
)  # fmt: skip

_NAMES = "[" + ", ".join(f"'{s}'" for s in STATUS_BITS) + "]"
_BIT = f"indexOf({_NAMES}, if(kind = 'status', status, upper(kind)))"

_BIT_VALUE = f"if({_BIT} = 0, toUInt32(0), bitShiftLeft(toUInt32(1), {_BIT} - 1))"
_COLUMNS = """toStartOfMinute(occurred_at) AS minute,
  message_id,
  provider,
  sender_domain,
  recipient_domain,
  arraySort(arrayMap((k, v) -> concat(k, '=', v), mapKeys(tags), mapValues(tags))) AS tags"""

# The view ORs each insert block's rows per key (fewer rows to merge later).
SELECT = f"""SELECT
  {_COLUMNS},
  groupBitOr({_BIT_VALUE}) AS statuses
FROM {{source}}
GROUP BY minute, message_id, provider, sender_domain, recipient_domain, tags"""

# The backfill streams one row per event, no GROUP BY: memory stays flat however large email_events is,
# and merges OR the rows together later (a key's rows OR to the same bits either way).
BACKFILL = f"""SELECT
  {_COLUMNS},
  {_BIT_VALUE} AS statuses
FROM {{source}}"""


def statements(opts: SchemaOptions) -> list[str]:
    db, on = opts.database, on_cluster(opts.cluster)
    engine = table_engine(db, "message_minute", "AggregatingMergeTree", opts.cluster)
    return [
        f"""CREATE TABLE IF NOT EXISTS {db}.message_minute{on} (
  minute DateTime('UTC'),
  message_id String,
  provider LowCardinality(String),
  sender_domain LowCardinality(String),
  recipient_domain LowCardinality(String),
  tags Array(String),
  statuses SimpleAggregateFunction(groupBitOr, UInt32)
) ENGINE = {engine}
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, message_id, provider, sender_domain, recipient_domain, tags)""",
        # Then the backfill of what was loaded before; OR-ing the same bits again is harmless.
        *fed_by_events(db, opts.cluster, "message_minute", SELECT, BACKFILL),
    ]
