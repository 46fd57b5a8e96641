"""7: drop the coarse rollups of migration 5 (``rollup_hour``, ``rollup_hour_tag``, ``rollup_5min``).

``message_minute`` (migration 6) answers every API count faster than they did, whole days included, so
they only cost insert time (three materialized views on every email_events insert) and disk.
``rollup_minute`` stays: the alert rules read it (and the analyst views did, until migration 8).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.migrations.ddl import on_cluster
from storage.migrations.m0005_coarse_rollups import COARSE

if TYPE_CHECKING:
    from storage.migrations import SchemaOptions

VERSION = 7
NAME = "drop_coarse_rollups"


def statements(opts: SchemaOptions) -> list[str]:
    db, on = opts.database, on_cluster(opts.cluster)
    out = []
    for r in COARSE:
        # The view first, so no insert lands in a table being dropped.
        out += [f"DROP VIEW IF EXISTS {db}.{r.table}_mv{on}", f"DROP TABLE IF EXISTS {db}.{r.table}{on}"]
    return out
