"""10: the analyst views (``stats_hourly``, ``stats_daily``, ``stats_daily_by_tag``) count outcomes by
final status, as ``schemas.outcomes`` defines them: each message's final status in the period, its class
(delivered, bounced, failed, canceled: they add up to ``outcomes``), the opened and clicked among the
delivered, and every rate over them. The volume columns (distinct messages per status seen) stay.

The definitions are those ``schemas.outcomes`` gave when this migration was written, frozen here as text:
a migration is history, so later changes to the live module (new figures) leave its SQL and checksum alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.migrations.m0006_message_minute import STATUS_BITS
from schemas.tables import on_cluster

if TYPE_CHECKING:
    from schemas.migrations import SchemaOptions

VERSION = 10
NAME = "outcome_views"

# schemas.outcomes as of this migration, written out: the outcome classes, the failure classes, the rates,
# the counts (in this order) and the final status from the status bits of ``m``.
_CLASSES = ("delivered", "bounced", "failed", "canceled")
_FAILURE_CLASSES = ("bounced", "failed")
_RATES = (*_CLASSES, "failure", "opened", "clicked")
_FIELDS = ("pending", *_CLASSES, "opened", "clicked", "reached_queued", "reached_sent")
_SQL_COUNTS = (
    "countIf(f IN ('QUEUED', 'SCHEDULED', 'SENT'))",
    "countIf(f IN ('DELIVERED', 'OPENED'))",
    "countIf(f IN ('UNDELIVERED'))",
    "countIf(f IN ('FAILED'))",
    "countIf(f IN ('CANCELED'))",
    "countIf(f IN ('DELIVERED', 'OPENED') AND (f = 'OPENED' OR cl))",
    "countIf(f IN ('DELIVERED', 'OPENED') AND cl)",
    "countIf(f IN ('DELIVERED', 'FAILED', 'OPENED', 'QUEUED', 'SENT', 'UNDELIVERED'))",
    "countIf(f IN ('DELIVERED', 'OPENED', 'SENT', 'UNDELIVERED'))",
)
_SQL_FINAL = (
    "multiIf(bitTest(m, 5), 'OPENED', bitTest(m, 4), 'UNDELIVERED', bitTest(m, 3), 'DELIVERED', "
    "bitTest(m, 2), 'SENT', bitTest(m, 6), 'FAILED', bitTest(m, 7), 'CANCELED', bitTest(m, 1), 'QUEUED', "
    "bitTest(m, 0), 'SCHEDULED', '')"
)
_VOLUMES = ("QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "OPENED", "FAILED", "CANCELED", "CLICK")
# Column names of the ``_FIELDS`` counts (the volume columns already use the status names).
COUNT_COLUMNS: dict[str, str] = {
    "pending": "pending_messages",
    **{name: f"{name}_outcomes" for name in _CLASSES},
    "opened": "opened_messages",
    "clicked": "clicked_messages",
    "reached_queued": "reached_queued",
    "reached_sent": "reached_sent",
}
RATE_COLUMNS: dict[str, str] = {
    "delivered": "delivery_rate",
    "bounced": "bounce_rate",
    "failed": "failed_rate",
    "canceled": "canceled_rate",
    "failure": "failure_rate",
    "opened": "open_rate",
    "clicked": "click_rate",
}


def _bit(status: str) -> str:
    return f"bitTest(m, {STATUS_BITS.index(status)})"


def _rate(name: str) -> str:
    if name in ("opened", "clicked"):
        numerator, denominator = COUNT_COLUMNS[name], COUNT_COLUMNS["delivered"]
    else:
        parts = _FAILURE_CLASSES if name == "failure" else (name,)
        numerator, denominator = " + ".join(COUNT_COLUMNS[p] for p in parts), "outcomes"
    return f"if({denominator} = 0, NULL, ({numerator}) / {denominator}) AS {RATE_COLUMNS[name]}"


def _stats(db: str, period: str, dims: str, inner_dims: str) -> str:
    volumes = ",\n  ".join(f"countIf({_bit(s)}) AS {s.lower()}" for s in _VOLUMES)
    counts = ",\n  ".join(
        f"{expr} AS {COUNT_COLUMNS[name]}" for expr, name in zip(_SQL_COUNTS, _FIELDS, strict=True)
    )
    outcomes = " + ".join(COUNT_COLUMNS[name] for name in _CLASSES)
    rates = ",\n  ".join(_rate(name) for name in _RATES)
    final = _SQL_FINAL
    return f"""SELECT {period.split(" AS ")[1]}, {dims},
  {volumes},
  {counts},
  {outcomes} AS outcomes,
  {rates}
FROM (
  SELECT {period}, {inner_dims}, message_id, groupBitOr(statuses) AS m, {final} AS f, {_bit("CLICK")} AS cl
  FROM {db}.message_minute
  GROUP BY ALL
)
GROUP BY ALL"""


def statements(opts: SchemaOptions) -> list[str]:
    db, on = opts.database, on_cluster(opts.cluster)
    domains = "provider, sender_domain, recipient_domain"
    tag = "arrayJoin(if(empty(tags), [''], tags)) AS tag"
    return [
        f"CREATE OR REPLACE VIEW {db}.stats_hourly{on} AS "
        + _stats(db, "toStartOfHour(minute) AS hour", domains, domains),
        f"CREATE OR REPLACE VIEW {db}.stats_daily{on} AS "
        + _stats(db, "toDate(minute) AS day", domains, domains),
        f"CREATE OR REPLACE VIEW {db}.stats_daily_by_tag{on} AS "
        + _stats(db, "toDate(minute) AS day", "tag", tag),
    ]
