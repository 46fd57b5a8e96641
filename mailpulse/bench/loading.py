"""Measurement 4, the loading ceiling: bare clickhouse-connect columnar inserts of the rows the
processor writes for the same events, batch for batch, into the same tables (another database)."""

from __future__ import annotations

import time
from collections.abc import Sequence

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


def insert(client: Client, database: str, prepared: list[tuple[Columns, Columns, Columns]]) -> float:
    """Seconds to insert every prepared batch (three inserts each)."""
    tables = (
        ("email_events", EVENT_COLUMNS),
        ("email_state", STATE_COLUMNS),
        ("email_transitions", TRANSITION_COLUMNS),
    )
    started = time.perf_counter()
    for columns in prepared:
        for (table, names), data in zip(tables, columns, strict=True):
            if data and data[0]:
                client.insert(f"{database}.{table}", data, column_names=list(names), column_oriented=True)
    return time.perf_counter() - started
