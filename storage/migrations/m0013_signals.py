"""13: deliverability signals in ``message_minute``: blocks and bounce classifications, as status bits.

Appended to migration 6's ``STATUS_BITS`` (bit i of ``statuses`` is ``STATUS_BITS[i]``):

- ``BLOCKED`` (bit 18): set by a bounce of type ``blocked`` (raw type ``blocked``), besides its
  UNDELIVERED bit, so a block counts apart from other bounces. Spam reports, unsubscribes and deferrals
  already have their bits (their event kinds).
- one bit per SendGrid bounce classification (bits 19-25, ``CLASSIFICATIONS``), set by a bounce that
  carries it; a value outside SendGrid's documented seven sets ``Unclassified``.

Bits, not a column: the table keeps its columns and its key (no row per classification, no ALTER of
the sort key), OR-ing a message's rows still gives everything it has seen, and every earlier
migration's statements still run against the table unchanged.

The view feeding ``message_minute`` is replaced without a gap: the new view is created first, then the
old one dropped; an insert seen by both writes bits OR-ed twice, which changes nothing. Existing rows
stay; the backfill adds, from ``email_events``, one row per block or classified bounce with its new bits
(the same OR argument makes a re-run harmless). The SQL is written out here: a migration is history and
does not follow later changes to live code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.migrations.ddl import on_cluster

if TYPE_CHECKING:
    from storage.migrations import SchemaOptions

VERSION = 13
NAME = "signals"

# SendGrid's bounce classifications (Bounces API ``classification``, Event Webhook
# ``bounce_classification``), in this order: a message with several takes the first.
CLASSIFICATIONS: tuple[str, ...] = (
    "Invalid Address", "Technical Failure", "Content", "Reputation", "Frequency or Volume Too High",
    "Mailbox Unavailable", "Unclassified",
)  # fmt: skip
CLASSIFICATION_PREFIX = "BOUNCE:"
# Stored data: migration 6's bits, then BLOCKED, then one per classification. Append only.
STATUS_BITS: tuple[str, ...] = (
    "SCHEDULED", "QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "OPENED", "FAILED", "CANCELED", "INBOUND",
    "DEFERRED", "CLICK", "SPAMREPORT", "UNSUBSCRIBE", "GROUP_UNSUBSCRIBE", "GROUP_RESUBSCRIBE",
    "ACCOUNT_STATUS_CHANGE", "OPERATION", "UNKNOWN", "BLOCKED",
    *(CLASSIFICATION_PREFIX + c for c in CLASSIFICATIONS),
)  # fmt: skip

_FIRST_CLASS = STATUS_BITS.index(CLASSIFICATION_PREFIX + CLASSIFICATIONS[0])
_NAMES = "[" + ", ".join(f"'{s}'" for s in STATUS_BITS[:18]) + "]"
_BIT = f"indexOf({_NAMES}, if(kind = 'status', status, upper(kind)))"
_STATUS = f"if({_BIT} = 0, toUInt32(0), bitShiftLeft(toUInt32(1), {_BIT} - 1))"
_BLOCKED = f"if(raw_type = 'blocked', toUInt32({1 << STATUS_BITS.index('BLOCKED')}), toUInt32(0))"
_CLASSES = "[" + ", ".join(f"'{c}'" for c in CLASSIFICATIONS) + "]"
_CLASS_INDEX = f"indexOf({_CLASSES}, bounce_classification)"
_UNCLASSIFIED = len(CLASSIFICATIONS)  # its 1-based index: where an undocumented value goes
_CLASS = (
    f"if(isNull(bounce_classification), toUInt32(0), bitShiftLeft(toUInt32(1), {_FIRST_CLASS} - 1 + "
    f"if({_CLASS_INDEX} = 0, {_UNCLASSIFIED}, {_CLASS_INDEX})))"
)
_BIT_VALUE = f"bitOr(bitOr({_STATUS}, {_BLOCKED}), {_CLASS})"
_COLUMNS = """toStartOfMinute(occurred_at) AS minute,
  message_id,
  provider,
  sender_domain,
  recipient_domain,
  arraySort(arrayMap((k, v) -> concat(k, '=', v), mapKeys(tags), mapValues(tags))) AS tags"""

SELECT = f"""SELECT
  {_COLUMNS},
  groupBitOr({_BIT_VALUE}) AS statuses
FROM {{source}}
GROUP BY minute, message_id, provider, sender_domain, recipient_domain, tags"""

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
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.message_minute_signals_mv{on} "
        f"TO {db}.message_minute AS " + SELECT.format(source=source),
        f"DROP VIEW IF EXISTS {db}.message_minute_mv{on}",
        f"INSERT INTO {db}.message_minute " + BACKFILL.format(source=source),
    ]
