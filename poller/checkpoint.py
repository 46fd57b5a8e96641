"""The poller's checkpoint: SQLite (stdlib) in the data directory.

Holds the high-water marks (newest ``createdAt`` listed, per resource list) and, for every email and
operation of the retention window, the last ``(status, updatedAt)`` published and when it was last
looked at. Each write is one transaction made after Kafka acknowledged the events it records, so a
crash leaves the checkpoint at or behind what Kafka holds: a restart may publish a transition again
(harmless: same event id and dedupe key), never skip one. Writes are incremental (one page at a time).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from poller.decisions import Mark, settled
from schemas.status import TERMINAL_OPERATION_STATUSES

EMAILS, OPERATIONS = "emails", "operations"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS high_water (name TEXT PRIMARY KEY, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS emails (
  id TEXT PRIMARY KEY, operation_id TEXT, status TEXT NOT NULL, updated_ms INTEGER NOT NULL,
  created_ms INTEGER NOT NULL, settled INTEGER NOT NULL, checked_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS emails_unsettled ON emails (settled, checked_at);
CREATE INDEX IF NOT EXISTS emails_created ON emails (created_ms);
CREATE TABLE IF NOT EXISTS operations (
  id TEXT PRIMARY KEY, status TEXT NOT NULL, updated_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL,
  terminal INTEGER NOT NULL, checked_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS operations_open ON operations (terminal);
"""
_CHUNK = 500  # ids per IN (...) (SQLite's variable limit is at least 999)


class Checkpoint:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)  # explicit transactions below
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def high_water(self, name: str) -> int | None:
        row = self.db.execute("SELECT created_ms FROM high_water WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def known(self, table: str, ids: Sequence[str]) -> dict[str, Mark]:
        """The stored marks of these emails or operations."""
        assert table in (EMAILS, OPERATIONS)
        operation = "operation_id" if table == EMAILS else "NULL"
        found: dict[str, Mark] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, status, updated_ms, created_ms, {operation} FROM {table} WHERE id IN ({marks})"
            for row in self.db.execute(sql, chunk):
                found[row[0]] = Mark(row[0], row[1], row[2], row[3], row[4])
        return found

    def record(
        self, table: str, marks: Sequence[Mark], checked_at: float, high_water: int | None = None
    ) -> None:
        """Store ``marks`` (all looked at ``checked_at``) and raise the table's high-water mark to
        ``high_water``, in one transaction."""
        assert table in (EMAILS, OPERATIONS)
        with self._transaction():
            if table == EMAILS:
                self.db.executemany(
                    "INSERT OR REPLACE INTO emails VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (m.id, m.operation_id, m.status, m.updated_ms, m.created_ms, settled(m), checked_at)
                        for m in marks
                    ],
                )
            else:
                self.db.executemany(
                    "INSERT OR REPLACE INTO operations VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (
                            m.id,
                            m.status,
                            m.updated_ms,
                            m.created_ms,
                            m.status in TERMINAL_OPERATION_STATUSES,
                            checked_at,
                        )
                        for m in marks
                    ],
                )
            if high_water is not None:
                self.db.execute(
                    "INSERT INTO high_water VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                    "SET created_ms = max(created_ms, excluded.created_ms)",
                    (table, high_water),
                )

    def due(self, checked_before: float, limit: int = 100_000) -> list[Mark]:
        """Unsettled emails last looked at before ``checked_before`` (oldest look first)."""
        rows = self.db.execute(
            "SELECT id, status, updated_ms, created_ms, operation_id FROM emails "
            "WHERE settled = 0 AND checked_at < ? ORDER BY checked_at LIMIT ?",
            (checked_before, limit),
        )
        return [Mark(*row) for row in rows]

    def open_operations(self) -> list[Mark]:
        rows = self.db.execute(
            "SELECT id, status, updated_ms, created_ms FROM operations WHERE terminal = 0 ORDER BY created_ms"
        )
        return [Mark(*row) for row in rows]

    def forget(self, table: str, ids: Sequence[str]) -> None:
        """Drop rows the API no longer has (past its retention)."""
        assert table in (EMAILS, OPERATIONS)
        with self._transaction():
            self.db.executemany(f"DELETE FROM {table} WHERE id = ?", [(i,) for i in ids])

    def prune(self, created_before_ms: int) -> int:
        """Forget everything created before ``created_before_ms``; returns the unsettled emails dropped."""
        with self._transaction():
            (unsettled,) = self.db.execute(
                "SELECT count() FROM emails WHERE settled = 0 AND created_ms < ?", (created_before_ms,)
            ).fetchone()
            self.db.execute("DELETE FROM emails WHERE created_ms < ?", (created_before_ms,))
            self.db.execute("DELETE FROM operations WHERE created_ms < ?", (created_before_ms,))
        return int(unsettled)

    def counts(self) -> dict[str, int]:
        (emails, unsettled) = self.db.execute("SELECT count(), count() - sum(settled) FROM emails").fetchone()
        (open_operations,) = self.db.execute("SELECT count() FROM operations WHERE terminal = 0").fetchone()
        return {"emails": emails, "unsettled": unsettled or 0, "open_operations": open_operations}

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
