"""Measurement 4, the loading ceiling: bare clickhouse-connect inserts of the columns the processor
writes for the same events, batch for batch, into the same tables (another database), two ways:
column-oriented Native (``client.insert``, what the processor uses) and Arrow (``client.insert_arrow``,
the Python columns converted by pyarrow, conversion timed). The bench's ceiling is the faster one."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from processors.batch import Consumed, merge_batch
from processors.columns import Columns, event_columns, state_columns, transition_columns
from processors.state import MessageState
from schemas.event import CanonicalEvent
from schemas.tables import EVENT_COLUMNS, STATE_COLUMNS, TRANSITION_COLUMNS


def batches(events: Sequence[CanonicalEvent], batch_size: int) -> list[tuple[Columns, Columns, Columns]]:
    """(events, states, transitions) columns per batch, merged as the processor would (not timed)."""
    states: dict[str, MessageState] = {}

    def state_of(message_id: str) -> MessageState:
        return states.setdefault(message_id, MessageState(message_id))

    out = []
    for start in range(0, len(events), batch_size):
        chunk = [Consumed(0, start + i, e) for i, e in enumerate(events[start : start + batch_size])]
        result = merge_batch(chunk, state_of)
        out.append(
            (
                event_columns(result.new_events),
                state_columns(result.changed_states),
                transition_columns(result.transitions),
            )
        )
    return out


TABLES = (
    ("email_events", EVENT_COLUMNS),
    ("email_state", STATE_COLUMNS),
    ("email_transitions", TRANSITION_COLUMNS),
)


def insert(client: Client, database: str, prepared: list[tuple[Columns, Columns, Columns]]) -> float:
    """Seconds to insert every prepared batch (three column-oriented inserts each)."""
    started = time.perf_counter()
    for columns in prepared:
        for (table, names), data in zip(TABLES, columns, strict=True):
            if data and data[0]:
                client.insert(f"{database}.{table}", data, column_names=list(names), column_oriented=True)
    return time.perf_counter() - started


def insert_arrow(client: Client, database: str, prepared: list[tuple[Columns, Columns, Columns]]) -> float:
    """Seconds to convert every prepared batch to Arrow tables and insert them (``insert_arrow``)."""
    schemas = [arrow_schema(client, database, table, names) for table, names in TABLES]
    started = time.perf_counter()
    for columns in prepared:
        for (table, _), schema, data in zip(TABLES, schemas, columns, strict=True):
            if data and data[0]:
                arrays = [pa.array(column, type=f.type) for f, column in zip(schema, data, strict=True)]
                client.insert_arrow(f"{database}.{table}", pa.Table.from_arrays(arrays, schema=schema))
    return time.perf_counter() - started


_ARROW_TYPES = {
    "String": pa.string(), "UInt32": pa.uint32(), "UInt64": pa.uint64(), "Bool": pa.bool_(),
    "Float64": pa.float64(), "DateTime64(3, 'UTC')": pa.timestamp("ms", tz="UTC"),  # ms ticks as they are
    "Map(String, String)": pa.map_(pa.string(), pa.string()), "Array(String)": pa.list_(pa.string()),
}  # fmt: skip


def arrow_type(clickhouse_type: str) -> pa.DataType:
    """The Arrow type of a column of mailpulse's tables (LowCardinality and Nullable are the
    engine's business: Arrow columns are nullable, and ClickHouse builds the dictionaries)."""
    for wrapper in ("LowCardinality(", "Nullable("):
        if clickhouse_type.startswith(wrapper):
            clickhouse_type = clickhouse_type[len(wrapper) : -1]
    return _ARROW_TYPES[clickhouse_type]


def arrow_schema(client: Client, database: str, table: str, names: Sequence[str]) -> pa.Schema:
    rows = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}",
        parameters={"db": database, "t": table},
    ).result_rows
    types: dict[str, str] = {str(name): str(kind) for name, kind in rows}
    return pa.schema([(name, arrow_type(types[name])) for name in names])
