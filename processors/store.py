"""ClickHouse adapter: the only place that talks to ClickHouse (server over HTTP or embedded chDB).

``clickhouse_connect.get_client(dsn=...)`` takes ``chdb:///dir`` and ``http(s)://…`` alike, so the
embedded default and production share every line below.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from processors.rows import Row, event_from_row
from schemas.event import CanonicalEvent
from schemas.tables import EVENT_COLUMNS, STATE_COLUMNS, TRANSITION_COLUMNS, ddl

# Keep IN-lists well under ClickHouse's query size limits.
_LOOKUP_CHUNK = 5_000


def connect(dsn: str) -> Client:
    return clickhouse_connect.get_client(dsn=dsn)


class ClickHouseStore:
    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.database = database

    def migrate(self) -> None:
        for statement in ddl(self.database):
            self.client.command(statement)

    def load_events(self, message_ids: Collection[str]) -> dict[str, list[CanonicalEvent]]:
        """Every stored event of these messages (duplicates possible before merges; callers fold)."""
        found: dict[str, list[CanonicalEvent]] = defaultdict(list)
        ids = list(message_ids)
        sql = (
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM {self.database}.email_events"
            " WHERE message_id IN {ids:Array(String)}"
        )
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            result = self.client.query(sql, parameters={"ids": ids[start : start + _LOOKUP_CHUNK]})
            for row in result.named_results():
                found[row["message_id"]].append(event_from_row(row))
        return dict(found)

    def write(
        self, events: Sequence[Row], states: Sequence[Row], transitions: Sequence[Row], token: str
    ) -> None:
        """Insert one batch. ``token`` derives from Kafka positions, so a retried batch is dropped by
        ClickHouse's insert deduplication. email_events goes last: an event found there proves that
        the state and transitions of its batch were written too (replays rely on it)."""
        if transitions:
            self._insert("email_transitions", TRANSITION_COLUMNS, transitions, f"transitions|{token}")
        if states:
            self._insert("email_state", STATE_COLUMNS, states, f"state|{token}")
        if events:
            self._insert("email_events", EVENT_COLUMNS, events, f"events|{token}")

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[Row], token: str) -> None:
        self.client.insert(
            f"{self.database}.{table}",
            [list(column) for column in zip(*rows, strict=True)],  # columnar: no per-row work in the driver
            column_names=list(columns),
            column_oriented=True,
            settings={"insert_deduplicate": 1, "insert_deduplication_token": token},
        )

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.client.query(sql, parameters=parameters).result_rows]
