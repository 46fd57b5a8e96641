"""ClickHouse adapter: the only place that talks to ClickHouse (server over HTTP or embedded chDB).

``clickhouse_connect.get_client(dsn=...)`` takes ``chdb:///dir`` and ``http(s)://…`` alike, so the
embedded default and production share every line below.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from storage.migrations import (
    Retention,
    SchemaOptions,
    changed,
    migrations_table,
    pending,
    ttl_changes,
)

log = logging.getLogger(__name__)

Row = tuple[Any, ...]
Columns = list[list[Any]]

# ClickHouse error codes that blame the inserted data, not the server: parse and conversion failures,
# an unknown enum value, a violated constraint of the landing table (storage/migrations/m0011).
BAD_INPUT_CODES: frozenset[int] = frozenset({
    6,  # CANNOT_PARSE_TEXT
    7,  # INCORRECT_NUMBER_OF_COLUMNS
    25,  # CANNOT_PARSE_ESCAPE_SEQUENCE
    26,  # CANNOT_PARSE_QUOTED_STRING
    27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,  # ATTEMPT_TO_READ_AFTER_EOF
    33,  # CANNOT_READ_ALL_DATA
    38,  # CANNOT_PARSE_DATE
    41,  # CANNOT_PARSE_DATETIME
    53,  # TYPE_MISMATCH
    70,  # CANNOT_CONVERT_TYPE
    72,  # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    130,  # CANNOT_READ_ARRAY_FROM_TEXT
    131,  # TOO_LARGE_STRING_SIZE
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    346,  # CANNOT_CONVERT_CHARSET
    395,  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
    467,  # CANNOT_PARSE_BOOL
    469,  # VIOLATED_CONSTRAINT
    563,  # CANNOT_READ_MAP_FROM_TEXT
    632,  # UNEXPECTED_DATA_AFTER_PARSED_VALUE
    691,  # UNKNOWN_ELEMENT_OF_ENUM
})  # fmt: skip
_CODE = re.compile(r"\bCode:\s*(\d+)")

# The parse of the landing table: strict (no row skipped, an unknown enum value or a bad time fails the
# insert), ISO times with "Z" and fractions, a field added to v2 later ignored rather than refused.
LOAD_SETTINGS: dict[str, Any] = {
    "date_time_input_format": "best_effort",
    "input_format_skip_unknown_fields": 1,
    "input_format_allow_errors_num": 0,
    "input_format_allow_errors_ratio": 0,
    "input_format_null_as_default": 1,
    "input_format_json_read_objects_as_strings": 1,
    "input_format_json_empty_as_default": 0,
    # Retries of a batch carry the same token: dropped by the landing insert and by every view's.
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
}


class BadInput(ValueError):
    """ClickHouse refused an insert because of the data in it (ClickHouse's message as the text)."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


def error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    found = _CODE.search(str(exc))
    return int(found.group(1)) if found else None


def connect(dsn: str) -> Client:
    return clickhouse_connect.get_client(dsn=dsn)


class ClickHouseStore:
    # Where ``load`` puts record values, and how ClickHouse reads them: the landing table whose views
    # fill the tables. A subclass may name another (the bench's nil sink).
    landing_table = "email_events_in"
    landing_format = "JSONEachRow"

    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.database = database
        # Column types by table, read once: given them, the driver skips the DESCRIBE it otherwise
        # runs before every insert, most of a small insert's time (docs/performance.md#hot-path-choices).
        self._types: dict[str, dict[str, str]] = {}

    def migrate(self, cluster: str | None = None, retention: Retention | None = None) -> list[str]:
        """Apply pending migrations in order, record each, then bring TTLs to ``retention``.
        Returns the names applied. Safe to run from several processes at once: statements are
        idempotent and a migration is recorded only after its last statement."""
        opts = SchemaOptions(self.database, cluster)
        for statement in migrations_table(opts):
            self.client.command(statement)
        applied = self.applied_migrations()
        for migration in changed(applied, opts):
            log.warning("migration %s (%s) changed since it was applied", migration.version, migration.name)
        done = []
        for migration in pending(applied):
            for statement in migration.statements(opts):
                self.client.command(statement)
            self.client.insert(
                f"{self.database}.schema_migrations",
                [[migration.version, migration.name, migration.checksum(opts), datetime.now(UTC)]],
                column_names=["version", "name", "checksum", "applied_at"],
            )
            log.info("applied migration %s_%s", migration.version, migration.name)
            done.append(f"{migration.version:04d}_{migration.name}")
        engines = dict(
            self.query(
                "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
                {"db": self.database},
            )
        )
        # Existing parts keep their rows until a merge applies the new TTL: no rewrite at start.
        for statement in ttl_changes(opts, retention or Retention(), engines):
            self.client.command(statement, settings={"materialize_ttl_after_modify": 0})
        self._types.clear()
        return done

    def applied_migrations(self) -> dict[int, str]:
        """version -> checksum of every recorded migration."""
        rows = self.query(f"SELECT version, checksum FROM {self.database}.schema_migrations FINAL")
        return {int(version): str(checksum) for version, checksum in rows}

    def load(self, values: Sequence[bytes], token: str) -> None:
        """Insert raw envelope v2 values (Kafka record values) as one block into ``email_events_in``;
        its views fill events, state and rollups. A retry with the same ``token`` adds nothing. Raises
        BadInput when ClickHouse blames the data (nothing of the block is stored then); other errors
        (server unreachable...) propagate as they are."""
        if not values:
            return
        try:
            self.client.raw_insert(
                f"{self.database}.{self.landing_table}",
                insert_block=b"\n".join(values),
                fmt=self.landing_format,
                settings={**LOAD_SETTINGS, "insert_deduplication_token": token},
            )
        except DatabaseError as exc:
            code = error_code(exc)
            if code in BAD_INPUT_CODES:
                raise BadInput(str(exc), code) from exc
            if isinstance(exc.__cause__, UnicodeDecodeError):
                # chDB takes the insert's data inside its query text, which must be UTF-8: bytes that
                # are not are the data's fault (a server would fail to parse them as JSON instead).
                raise BadInput(f"not UTF-8 text: {exc.__cause__}", None) from exc
            raise

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row], token: str) -> None:
        """Insert into one of mailpulse's tables; a retry with the same ``token`` adds nothing."""
        self._insert(table, columns, _columns(rows), token)

    def _insert(self, table: str, names: Sequence[str], columns: Columns, token: str) -> None:
        # The driver's insert context refers to itself (a bound method kept as an attribute) and to
        # the data it was given, so it lives until the cycle collector runs, and with it a batch's
        # per-row lists (~16,000 objects a batch that every young collection walked). It gets a list
        # of our own, emptied afterwards: the columns are freed by reference counting instead.
        data = list(columns)
        try:
            self.client.insert(
                f"{self.database}.{table}",
                data,  # columnar: no per-row work in the driver
                column_names=list(names),
                column_type_names=self._column_types(table, names),
                column_oriented=True,
                settings={"insert_deduplicate": 1, "insert_deduplication_token": token},
            )
        except Exception:
            self._types.pop(table, None)  # the table may have changed (a migration): read them again
            raise
        finally:
            data.clear()

    def _column_types(self, table: str, names: Sequence[str]) -> list[str]:
        types = self._types.get(table)
        if types is None:
            rows = self.query(
                "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}",
                {"db": self.database, "t": table},
            )
            types = self._types[table] = {str(name): str(kind) for name, kind in rows}
        return [types[name] for name in names]

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.client.query(sql, parameters=parameters).result_rows]


def _columns(rows: Sequence[Row]) -> Columns:
    return [list(column) for column in zip(*rows, strict=True)]
