"""SQL of the alert measurements over ``message_minute`` (pure: text and parameters, no client).

Per key of a dimension over a window, with the definitions of ``schemas.outcomes`` (those of the
analytics API and the dashboard): each message's statuses in the window OR-ed together, its final status
among them by precedence, then ``outcomes`` = messages whose final status is an outcome (delivered,
bounced, failed, canceled), ``failures`` = bounced + failed, ``bounced`` = final UNDELIVERED. A message
in several minutes or rows counts once per key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alerting.state_machine import Sample
from schemas import outcomes as oc
from schemas.alert_rules import AlertRule, Dimension, Metric
from storage.tables import STATUS_BITS

# Identifiers come from this allow-list only; everything else is a bound parameter.
KEY_COLUMN: dict[Dimension, str] = {
    "": "''",
    "provider": "provider",
    "sender_domain": "sender_domain",
    "recipient_domain": "recipient_domain",
    "tag": "tag",
}
# Alert metric -> the outcome classes over outcomes it measures.
METRIC_CLASSES: dict[Metric, tuple[str, ...]] = {
    "failure_rate": oc.FAILURE_CLASSES,
    "bounce_rate": ("bounced",),
}


@dataclass(frozen=True)
class Counts:
    outcomes: int
    failures: int  # bounced + failed
    bounced: int

    def sample(self, metric: str) -> Sample:
        hits = self.failures if metric == "failure_rate" else self.bounced
        return Sample(oc.ratio(hits, self.outcomes), self.outcomes)


def window(now: datetime, window_s: int) -> tuple[datetime, datetime]:
    """Rollup minutes whose start lies in [now - window_s, now), as naive UTC for DateTime params."""
    end = now.astimezone(UTC).replace(tzinfo=None)
    return end - timedelta(seconds=window_s), end


def _bit(status: str) -> str:
    return f"bitTest(m, {STATUS_BITS.index(status)})"


def rates_query(database: str, by: Dimension, start: datetime, end: datetime) -> tuple[str, dict[str, Any]]:
    """(sql, parameters) giving rows (key, outcomes, failures, bounced) over [start, end), keys with at
    least one outcome only."""
    key = KEY_COLUMN[by]
    # Untagged mail is not a tag: per-tag rules look at tagged mail only (an all-mail rule covers the rest).
    source = f"{database}.message_minute" + (" ARRAY JOIN tags AS tag" if by == "tag" else "")
    counts = dict(zip(oc.FIELDS, oc.sql_counts("f", "cl"), strict=True))
    outcomes = " + ".join(counts[name] for name in oc.CLASSES)
    failures = " + ".join(counts[name] for name in METRIC_CLASSES["failure_rate"])
    bounced = " + ".join(counts[name] for name in METRIC_CLASSES["bounce_rate"])
    final = oc.sql_final_status(lambda s: _bit(s.value))
    sql = f"""SELECT k AS key, {outcomes} AS outcomes, {failures} AS failures, {bounced} AS bounced
FROM (
  SELECT {key} AS k, groupBitOr(statuses) AS m, {final} AS f, {_bit("CLICK")} AS cl
  FROM {source}
  WHERE minute >= {{start:DateTime}} AND minute < {{end:DateTime}}
  GROUP BY k, message_id
)
GROUP BY k
HAVING outcomes > 0
ORDER BY k"""
    return sql, {"start": start, "end": end}


def counts_from_rows(rows: list[tuple[Any, ...]]) -> dict[str, Counts]:
    return {str(key): Counts(int(o), int(f), int(b)) for key, o, f, b in rows}


def measurement_groups(rules: tuple[AlertRule, ...]) -> dict[tuple[Dimension, int], list[AlertRule]]:
    """Rules sharing a dimension and window share one query."""
    groups: dict[tuple[Dimension, int], list[AlertRule]] = {}
    for rule in rules:
        groups.setdefault((rule.by, rule.window_s), []).append(rule)
    return groups
