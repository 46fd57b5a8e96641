"""SQL helpers the migrations are written with. Part of the frozen migration set: a change here changes
the SQL of released migrations (``migrate`` reports it as an edited migration), so it never changes."""

from __future__ import annotations

# Non-replicated MergeTree only honours insert_deduplication_token with a window set (docs/design.md).
DEDUP_WINDOW = 10_000


def on_cluster(cluster: str | None) -> str:
    return f" ON CLUSTER {cluster}" if cluster else ""


def table_engine(database: str, table: str, kind: str, cluster: str | None, *args: str) -> str:
    """``kind(args)``, or its Replicated form on a cluster (Keeper path per table, {replica} macro)."""
    if cluster:
        args = (f"'/clickhouse/tables/{{shard}}/{database}/{table}'", "'{replica}'", *args)
        kind = f"Replicated{kind}"
    return f"{kind}({', '.join(args)})"


def fed_by_events(
    database: str, cluster: str | None, table: str, select: str, backfill: str = ""
) -> list[str]:
    """A materialized view feeding ``table`` from every email_events insert (``select`` with a ``{source}``
    placeholder), then a backfill of what was loaded before it (``backfill``, default ``select``). Tables
    fed this way hold idempotent aggregates: rows both the view and the backfill see are harmless."""
    source, on = f"{database}.email_events", on_cluster(cluster)
    return [
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_mv{on} TO {database}.{table} AS "
        + select.format(source=source),
        f"INSERT INTO {database}.{table} " + (backfill or select).format(source=source),
    ]


def dedup_settings(cluster: str | None) -> str:
    # Replicated tables deduplicate inserts by default (replicated_deduplication_window).
    return "" if cluster else f"\nSETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}"
