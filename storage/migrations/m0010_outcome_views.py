"""10: the analyst views (``stats_hourly``, ``stats_daily``, ``stats_daily_by_tag``) count outcomes by
final status, as ``schemas.outcomes`` defines them: each message's final status in the period, its class
(delivered, bounced, failed, canceled: they add up to ``outcomes``), the opened and clicked among the
delivered, and every rate over them. The volume columns (distinct messages per status seen) stay.

The SQL is generated from ``schemas.outcomes``: changing a definition there changes this migration's
checksum, which ``migrate`` reports; such a change needs a new migration replacing the views again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import outcomes as oc
from storage.migrations.m0006_message_minute import STATUS_BITS
from storage.tables import on_cluster

if TYPE_CHECKING:
    from storage.migrations import SchemaOptions

VERSION = 10
NAME = "outcome_views"

_VOLUMES = ("QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "OPENED", "FAILED", "CANCELED", "CLICK")
# Column names of the ``oc.FIELDS`` counts (the volume columns already use the status names).
COUNT_COLUMNS: dict[str, str] = {
    "pending": "pending_messages",
    **{name: f"{name}_outcomes" for name in oc.CLASSES},
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
        parts = oc.FAILURE_CLASSES if name == "failure" else (name,)
        numerator, denominator = " + ".join(COUNT_COLUMNS[p] for p in parts), "outcomes"
    return f"if({denominator} = 0, NULL, ({numerator}) / {denominator}) AS {RATE_COLUMNS[name]}"


def _stats(db: str, period: str, dims: str, inner_dims: str) -> str:
    volumes = ",\n  ".join(f"countIf({_bit(s)}) AS {s.lower()}" for s in _VOLUMES)
    counts = ",\n  ".join(
        f"{expr} AS {COUNT_COLUMNS[name]}"
        for expr, name in zip(oc.sql_counts("f", "cl"), oc.FIELDS, strict=True)
    )
    outcomes = " + ".join(COUNT_COLUMNS[name] for name in oc.CLASSES)
    rates = ",\n  ".join(_rate(name) for name in oc.RATES)
    final = oc.sql_final_status(lambda s: _bit(s.value))
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
