"""SQL of the alert measurements over ``message_minute`` (pure: text and parameters, no client).

Per key of a dimension over a window, with the definitions of ``schemas.outcomes`` (those of the
analytics API and the dashboard): each message's statuses in the window OR-ed together, its final status
among them by precedence and its flags (spam report, block, deferral, ...), then every count of
``schemas.outcomes`` per key. A message in several minutes or rows counts once per key. An alert metric
is one rate of ``schemas.outcomes``; the volume its rule's ``min_volume`` reads is that rate's
denominator (outcomes, delivered messages, or messages that reached SENT).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alerting.state_machine import Sample
from schemas import outcomes as oc
from schemas.alert_rules import AlertRule, Dimension, Metric
from schemas.mailbox_providers import sql_mailbox_provider
from storage.tables import STATUS_BITS

# Identifiers come from this allow-list only; everything else is a bound parameter.
KEY_COLUMN: dict[Dimension, str] = {
    "": "''",
    "provider": "provider",
    "sender_domain": "sender_domain",
    "recipient_domain": "recipient_domain",
    "mailbox_provider": sql_mailbox_provider("recipient_domain"),
    "tag": "tag",
}
# Alert metric -> the rate of schemas.outcomes it measures.
METRIC_RATES: dict[Metric, str] = {
    "failure_rate": "failure",
    "bounce_rate": "bounced",
    "spam_rate": "spam",
    "block_rate": "block",
    "deferral_rate": "deferral",
}


def sample(figures: oc.Figures, metric: Metric) -> Sample:
    """The metric's rate and the volume (its denominator) ``min_volume`` is compared with."""
    rate = METRIC_RATES[metric]
    return Sample(figures.rates()[rate], figures.denominator(rate))


def window(now: datetime, window_s: int) -> tuple[datetime, datetime]:
    """Rollup minutes whose start lies in [now - window_s, now), as naive UTC for DateTime params."""
    end = now.astimezone(UTC).replace(tzinfo=None)
    return end - timedelta(seconds=window_s), end


def _bit(status: str) -> str:
    return f"bitTest(m, {STATUS_BITS.index(status)})"


def rates_query(database: str, by: Dimension, start: datetime, end: datetime) -> tuple[str, dict[str, Any]]:
    """(sql, parameters) giving rows (key, *the counts of ``oc.FIELDS``) over [start, end), keys with at
    least one outcome or one message that reached SENT only."""
    key = KEY_COLUMN[by]
    # Untagged mail is not a tag: per-tag rules look at tagged mail only (an all-mail rule covers the rest).
    source = f"{database}.message_minute" + (" ARRAY JOIN tags AS tag" if by == "tag" else "")
    counts = ", ".join(f"{expr} AS {name}" for expr, name in zip(oc.sql_counts("f"), oc.FIELDS, strict=True))
    outcomes = " + ".join(oc.CLASSES)
    final = oc.sql_final_status(lambda s: _bit(s.value))
    sql = f"""SELECT k AS key, {counts}
FROM (
  SELECT {key} AS k, groupBitOr(statuses) AS m, {final} AS f, {oc.sql_flags(_bit)}
  FROM {source}
  WHERE minute >= {{start:DateTime}} AND minute < {{end:DateTime}}
  GROUP BY k, message_id
)
GROUP BY k
HAVING ({outcomes}) > 0 OR reached_sent > 0
ORDER BY k"""
    return sql, {"start": start, "end": end}


def counts_from_rows(rows: list[tuple[Any, ...]]) -> dict[str, oc.Figures]:
    return {str(key): oc.from_row(values) for key, *values in rows}


def measurement_groups(rules: tuple[AlertRule, ...]) -> dict[tuple[Dimension, int], list[AlertRule]]:
    """Rules sharing a dimension and window share one query."""
    groups: dict[tuple[Dimension, int], list[AlertRule]] = {}
    for rule in rules:
        groups.setdefault((rule.by, rule.window_s), []).append(rule)
    return groups
