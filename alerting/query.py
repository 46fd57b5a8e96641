"""SQL of the alert measurements over ``rollup_minute`` (pure: text and parameters, no client).

Per key of a dimension over a window: ``outcomes`` = distinct messages with a DELIVERED, UNDELIVERED or
FAILED event, ``failed`` = distinct messages in UNDELIVERED or FAILED, ``bounced`` = distinct messages in
UNDELIVERED (the definitions of the analytics API). States are merged with uniqExactMerge, never summed:
a message in several minutes, tags or statuses counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alerting.engine import Sample
from alerting.rules import AlertRule, Dimension

# Identifiers come from this allow-list only; everything else is a bound parameter.
KEY_COLUMN: dict[Dimension, str] = {
    "": "''",
    "provider": "provider",
    "sender_domain": "sender_domain",
    "recipient_domain": "recipient_domain",
    "tag": "tag",
}
OUTCOME_STATUSES = ("DELIVERED", "UNDELIVERED", "FAILED")
FAILED_STATUSES = ("UNDELIVERED", "FAILED")
BOUNCED_STATUSES = ("UNDELIVERED",)


@dataclass(frozen=True)
class Counts:
    outcomes: int
    failed: int
    bounced: int

    def sample(self, metric: str) -> Sample:
        hits = self.failed if metric == "failure_rate" else self.bounced
        return Sample(hits / self.outcomes if self.outcomes else None, self.outcomes)


def window(now: datetime, window_s: int) -> tuple[datetime, datetime]:
    """Rollup minutes whose start lies in [now - window_s, now), as naive UTC for DateTime params."""
    end = now.astimezone(UTC).replace(tzinfo=None)
    return end - timedelta(seconds=window_s), end


def rates_query(database: str, by: Dimension, start: datetime, end: datetime) -> tuple[str, dict[str, Any]]:
    """(sql, parameters) giving rows (key, outcomes, failed, bounced) over [start, end)."""
    key = KEY_COLUMN[by]
    # Untagged mail is not a tag: per-tag rules look at tagged mail only (an all-mail rule covers the rest).
    untagged = " AND tag != ''" if by == "tag" else ""
    sql = f"""SELECT {key} AS key,
  uniqExactMergeIf(messages, status IN {{outcome:Array(String)}}) AS outcomes,
  uniqExactMergeIf(messages, status IN {{failed:Array(String)}}) AS failed,
  uniqExactMergeIf(messages, status IN {{bounced:Array(String)}}) AS bounced
FROM {database}.rollup_minute
WHERE minute >= {{start:DateTime}} AND minute < {{end:DateTime}}
  AND status IN {{outcome:Array(String)}}{untagged}
GROUP BY key
ORDER BY key"""
    params: dict[str, Any] = {
        "outcome": list(OUTCOME_STATUSES),
        "failed": list(FAILED_STATUSES),
        "bounced": list(BOUNCED_STATUSES),
        "start": start,
        "end": end,
    }
    return sql, params


def counts_from_rows(rows: list[tuple[Any, ...]]) -> dict[str, Counts]:
    return {str(key): Counts(int(o), int(f), int(b)) for key, o, f, b in rows}


def measurement_groups(rules: tuple[AlertRule, ...]) -> dict[tuple[Dimension, int], list[AlertRule]]:
    """Rules sharing a dimension and window share one query."""
    groups: dict[tuple[Dimension, int], list[AlertRule]] = {}
    for rule in rules:
        groups.setdefault((rule.by, rule.window_s), []).append(rule)
    return groups
