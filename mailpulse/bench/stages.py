"""Measurement 5, stage by stage: the processor's own steps timed on the same records, in process and
without Kafka, batch for batch as the processor takes them (collector paused likewise). The table then
shows where an event's microseconds go, and how many the drain spends beyond them: fetching,
reordering, rebuilding states from ClickHouse, publishing transitions, committing."""

from __future__ import annotations

import time
from collections.abc import Sequence

from processors.batch import Consumed, merge_batch
from processors.collector import collector_paused
from processors.columns import event_columns, state_columns, transition_columns
from processors.decode import decode
from processors.state import MessageState
from processors.store import ClickHouseStore

STAGES = ("decode", "merge", "columns", "insert")


def measure(
    records: Sequence[tuple[bytes, bytes]], store: ClickHouseStore, batch_size: int
) -> dict[str, float]:
    """Microseconds per record spent in each stage (``STAGES``)."""
    spent = dict.fromkeys(STAGES, 0.0)
    states: dict[str, MessageState] = {}

    def state_of(message_id: str) -> MessageState:
        state = states.get(message_id)
        if state is None:
            state = states[message_id] = MessageState(message_id)
        return state

    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        with collector_paused():
            began = time.perf_counter()
            events = [decode(value) for _, value in chunk]
            decoded = time.perf_counter()
            result = merge_batch([Consumed(0, start + i, e) for i, e in enumerate(events)], state_of)
            merged = time.perf_counter()
            columns = (
                event_columns(result.new_events),
                state_columns(result.changed_states),
                transition_columns(result.transitions),
            )
            built = time.perf_counter()
            store.write_columns(*columns, f"stages|{start}")
            loaded = time.perf_counter()
        for stage, seconds in zip(
            STAGES, (decoded - began, merged - decoded, built - merged, loaded - built), strict=True
        ):
            spent[stage] += seconds
    return {stage: seconds / max(len(records), 1) * 1e6 for stage, seconds in spent.items()}
