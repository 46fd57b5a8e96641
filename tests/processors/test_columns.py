"""processors.columns builds the same inserts as processors.rows, column by column.

The rows (row by row, datetimes and enum values) are the reference; the columns may only differ in
representation: times as epoch milliseconds, enum members for their text, lists for tuples. The
integration tests (slice, crash recovery, ground truth) load through the columns into chDB.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from processors.batch import Consumed, merge_batch
from processors.columns import event_columns, state_columns, transition_columns
from processors.rows import event_row, state_row, transition_row
from processors.state import MessageState
from schemas.event import CanonicalEvent
from schemas.tables import EVENT_COLUMNS, STATE_COLUMNS, TRANSITION_COLUMNS
from tests.processors.test_state_properties import PROPS, event_sets, semantic_copy
from tests.schemas.test_sendgrid_inbound import details

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def plain(value: Any) -> Any:
    """The value as ClickHouse receives it: ms for a time, text for an enum, a list for a tuple."""
    if isinstance(value, datetime):
        return (value - EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def by_column(rows: list[tuple[Any, ...]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    return {name: [plain(row[i]) for row in rows] for i, name in enumerate(names)}


def named(columns: list[list[Any]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    assert len(columns) == len(names)
    assert all(len(c) == len(columns[0]) for c in columns)
    for column in columns:  # what the driver gets: ms ints for times, never datetimes
        assert not any(isinstance(v, datetime) for v in column)
    return {name: [plain(v) for v in column] for name, column in zip(names, columns, strict=True)}


def merged(events: list[CanonicalEvent]) -> Any:
    states: dict[str, MessageState] = {}
    batch = [Consumed(i % 3, 100 + i, e, late=i % 4 == 0) for i, e in enumerate(events)]
    return merge_batch(batch, lambda m: states.setdefault(m, MessageState(m)))


@PROPS
@given(event_sets, st.data())
def test_columns_equal_the_rows(events: list[CanonicalEvent], data: st.DataObject) -> None:
    copies = [semantic_copy(e) for e in data.draw(st.lists(st.sampled_from(events), max_size=5))]
    result = merged(events + copies)
    new, states, transitions = result.new_events, result.changed_states, result.transitions
    assert named(event_columns(new), EVENT_COLUMNS) == by_column(
        [event_row(c.event, c.partition, c.offset) for c in new], EVENT_COLUMNS
    )
    assert named(state_columns(states), STATE_COLUMNS) == by_column(
        [state_row(s) for s in states], STATE_COLUMNS
    )
    assert named(transition_columns(transitions), TRANSITION_COLUMNS) == by_column(
        [transition_row(t) for t in transitions], TRANSITION_COLUMNS
    )


@PROPS
@given(event_sets, st.lists(details, min_size=1, max_size=3))
def test_received_mail_columns_equal_the_rows(events: list[CanonicalEvent], inbound: list[Any]) -> None:
    """A batch mixing received mail with other events: the inbound columns row for row."""
    mixed = [
        e.model_copy(update={"inbound": inbound[i]}) if i < len(inbound) else e for i, e in enumerate(events)
    ]
    items = [Consumed(0, i, e) for i, e in enumerate(mixed)]
    assert named(event_columns(items), EVENT_COLUMNS) == by_column(
        [event_row(c.event, c.partition, c.offset) for c in items], EVENT_COLUMNS
    )


def test_an_empty_batch_has_empty_columns() -> None:
    assert event_columns([]) == [[] for _ in EVENT_COLUMNS]
    assert state_columns([]) == [[] for _ in STATE_COLUMNS]
    assert transition_columns([]) == [[] for _ in TRANSITION_COLUMNS]
