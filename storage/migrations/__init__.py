"""Numbered ClickHouse migrations, applied in order and recorded in ``schema_migrations``.

Each migration is a module ``mNNNN_name.py`` with ``VERSION``, ``NAME`` and ``statements(opts)``. Every
statement is idempotent (IF NOT EXISTS, OR REPLACE, idempotent aggregate states), so a migration that
crashed half-way is simply run again; the record is written only after its last statement.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from storage.migrations.ddl import on_cluster, table_engine

# Tables derived from email_events by materialized views: whatever empties email_events empties these.
DERIVED_TABLES: tuple[str, ...] = ("rollup_minute", "message_minute", "email_state_agg")


@dataclass(frozen=True, slots=True)
class SchemaOptions:
    database: str
    cluster: str | None = None  # ON CLUSTER name; Replicated engines (one shard, N replicas)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: Callable[[SchemaOptions], list[str]]

    def checksum(self, opts: SchemaOptions) -> str:
        """Of the SQL it runs, so an edited, already applied migration is noticed."""
        return hashlib.sha256("\n;\n".join(self.statements(opts)).encode()).hexdigest()[:16]


def _discover() -> tuple[Migration, ...]:
    """Every ``mNNNN_name`` module of this package, in version order: adding a migration is adding a file."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if re.fullmatch(r"m\d{4}_\w+", m.name))
    modules = [importlib.import_module(f"{__name__}.{name}") for name in names]
    found = tuple(Migration(m.VERSION, m.NAME, m.statements) for m in modules)
    # The file name, VERSION and NAME must agree, and versions run 1, 2, ... without gaps.
    if [f"m{m.version:04d}_{m.name}" for m in found] != names or [m.version for m in found] != list(
        range(1, len(found) + 1)
    ):
        raise RuntimeError(f"migration modules, VERSION and NAME disagree: {names}")
    return found


MIGRATIONS: tuple[Migration, ...] = _discover()


def migrations_table(opts: SchemaOptions) -> list[str]:
    """The record of applied migrations (created before anything else)."""
    db, on = opts.database, on_cluster(opts.cluster)
    engine = table_engine(db, "schema_migrations", "ReplacingMergeTree", opts.cluster)
    return [
        f"CREATE DATABASE IF NOT EXISTS {db}{on}",
        f"""CREATE TABLE IF NOT EXISTS {db}.schema_migrations{on} (
  version UInt32,
  name String,
  checksum String,
  applied_at DateTime64(3, 'UTC')
) ENGINE = {engine}
ORDER BY version""",
    ]


def pending(applied: Mapping[int, str]) -> list[Migration]:
    """Migrations not yet recorded, in version order."""
    return [m for m in MIGRATIONS if m.version not in applied]


def changed(applied: Mapping[int, str], opts: SchemaOptions) -> list[Migration]:
    """Applied migrations whose SQL differs from what was recorded (edited after release)."""
    return [m for m in MIGRATIONS if m.version in applied and applied[m.version] != m.checksum(opts)]


@dataclass(frozen=True, slots=True)
class Retention:
    """Days kept (0 = forever): raw events, transitions and message state; the rollup apart, since its
    rows are few and dashboards look back further than anyone debugs single messages."""

    events_days: int = 0
    rollup_days: int = 0


# table -> (expression TTL counts from, which Retention field applies)
_TTL_COLUMNS: dict[str, tuple[str, str]] = {
    "email_events": ("toDateTime(occurred_at)", "events_days"),
    "email_transitions": ("toDateTime(occurred_at)", "events_days"),
    "email_state": ("toDateTime(last_event_at)", "events_days"),
    "email_state_agg": ("toDateTime(last_event_at)", "events_days"),
    "rollup_minute": ("minute", "rollup_days"),
    "message_minute": ("minute", "rollup_days"),
}


def ttl_changes(opts: SchemaOptions, retention: Retention, current: Mapping[str, str]) -> list[str]:
    """ALTERs that bring each table's TTL to ``retention``; ``current`` maps table -> engine_full as
    system.tables shows it. Empty when nothing differs, so running it at every start costs nothing."""
    on = on_cluster(opts.cluster)
    out = []
    for table, (column, field) in _TTL_COLUMNS.items():
        days: int = getattr(retention, field)
        engine = current.get(table, "")
        has_ttl = " TTL " in engine
        if days and f"TTL {column} + toIntervalDay({days})" not in engine:
            out.append(f"ALTER TABLE {opts.database}.{table}{on} MODIFY TTL {column} + INTERVAL {days} DAY")
        elif not days and has_ttl:
            out.append(f"ALTER TABLE {opts.database}.{table}{on} REMOVE TTL")
    return out
