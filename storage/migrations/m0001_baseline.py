"""1: events, per-message state, transitions and the FINAL views over them (the first release)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.tables import ddl

if TYPE_CHECKING:
    from storage.migrations import SchemaOptions

VERSION = 1
NAME = "baseline"


def statements(opts: SchemaOptions) -> list[str]:
    return ddl(opts.database, opts.cluster)
