"""5: coarser rollups beside ``rollup_minute``, so whole-day queries merge far fewer, larger states.

Superseded: migration 7 drops these tables (``message_minute``, migration 6, answers faster). Kept, as
every applied migration is, so a database's history replays the same.

Merging ``uniqExact`` states costs per state row and per message id in it; a day of 10M events is 8.2M
``rollup_minute`` rows (one per tag, per minute). These tables hold the same distinct-message states at
coarser grain and with fewer dimensions, and analytics/queries.py reads each part of a range from the
coarsest table that can answer it exactly (whole hours from an hourly table, the edges from finer ones):

- ``rollup_hour``: hour x status x provider x sender/recipient domain, no tag (one row per message-status
  and hour, not one per tag);
- ``rollup_hour_tag``: the same plus tag, for queries that filter or group by tag;
- ``rollup_5min``: 5 minutes x status x provider x sender domain, for 300 s and 900 s time series (per-bucket
  states stay small and there are few rows).

Same status expression and idempotent states as migration 2: duplicated rows and a rerun backfill add nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from storage.migrations.ddl import on_cluster, table_engine

if TYPE_CHECKING:
    from storage.migrations import SchemaOptions

VERSION = 5
NAME = "coarse_rollups"

_TAG = (
    "arrayJoin(if(empty(tags), [''], arrayMap((k, v) -> concat(k, '=', v), mapKeys(tags), mapValues(tags))))"
)
_STATUS = "if(kind = 'status', status, upper(kind))"


@dataclass(frozen=True, slots=True)
class Rollup:
    """A rollup table: its time column covers ``seconds`` (aligned to the epoch, so to UTC hours), its
    other keys are ``status`` and ``dims`` (column names, as in ``rollup_minute``)."""

    table: str
    time_column: str
    seconds: int
    dims: tuple[str, ...]
    time_expr: str = ""  # of email_events.occurred_at

    def select(self, source: str) -> str:
        dims = [_TAG + " AS tag" if d == "tag" else d for d in self.dims]
        columns = ",\n  ".join([f"{self.time_expr} AS {self.time_column}", f"{_STATUS} AS status", *dims])
        return f"""SELECT
  {columns},
  uniqExactState(message_id) AS messages
FROM {source}
GROUP BY ALL"""


_DOMAINS = ("provider", "sender_domain", "recipient_domain")
_SORT = ("sender_domain", "recipient_domain", "tag", "provider")  # after time and status, as rollup_minute
COARSE: tuple[Rollup, ...] = (
    Rollup("rollup_hour", "hour", 3600, _DOMAINS, "toStartOfHour(occurred_at)"),
    Rollup("rollup_hour_tag", "hour", 3600, (*_DOMAINS, "tag"), "toStartOfHour(occurred_at)"),
    Rollup(
        "rollup_5min", "five_minutes", 300, ("provider", "sender_domain"), "toStartOfFiveMinutes(occurred_at)"
    ),
)


def _create(db: str, on: str, r: Rollup, cluster: str | None) -> str:
    engine = table_engine(db, r.table, "AggregatingMergeTree", cluster)
    dims = "".join(f"\n  {d} {'String' if d == 'tag' else 'LowCardinality(String)'}," for d in r.dims)
    order = ", ".join([r.time_column, "status", *(d for d in _SORT if d in r.dims)])
    return f"""CREATE TABLE IF NOT EXISTS {db}.{r.table}{on} (
  {r.time_column} DateTime('UTC'),
  status LowCardinality(String),{dims}
  messages AggregateFunction(uniqExact, String)
) ENGINE = {engine}
PARTITION BY toYYYYMM({r.time_column})
ORDER BY ({order})"""


def statements(opts: SchemaOptions) -> list[str]:
    db, on = opts.database, on_cluster(opts.cluster)
    out = []
    for r in COARSE:
        out += [
            _create(db, on, r, opts.cluster),
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{r.table}_mv{on} TO {db}.{r.table} AS "
            + r.select(f"{db}.email_events"),
            # Backfill what was loaded before this migration; idempotent states make a rerun harmless.
            f"INSERT INTO {db}.{r.table} " + r.select(f"{db}.email_events"),
        ]
    return out
