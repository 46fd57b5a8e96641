"""A merged batch -> the columns of its three inserts (order of schemas.tables), built column-wise. Pure.

What processors.rows says row by row, without a tuple per row and the transpose after it: one C-level
attrgetter pass per table, then only the columns that need a conversion are rebuilt. Times go out as
epoch milliseconds, the DateTime64(3) ticks the driver writes as they are (from a datetime it computes
them in Python, ~0.5 us a value; a state keeps its times as milliseconds already). Enum members go out
as themselves: they are str, and the driver writes their text. tests/processors/test_columns.py holds
these columns equal to the rows' columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from processors.batch import Consumed, Transition
from processors.rows import _inbound_values
from processors.state import MessageState
from schemas.tables import EVENT_COLUMNS, INBOUND_COLUMNS, STATE_COLUMNS, TRANSITION_COLUMNS

Columns = list[list[Any]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

# The event attributes stored as they are, in EVENT_COLUMNS order up to kafka_partition.
_EVENT_ATTRS = EVENT_COLUMNS[: EVENT_COLUMNS.index("kafka_partition")]
_event_values = attrgetter(*_EVENT_ATTRS)
_STATUS, _OCCURRED, _RECEIVED = (_EVENT_ATTRS.index(c) for c in ("status", "occurred_at", "received_at"))
_DOMAINS = tuple(_EVENT_ATTRS.index(c) for c in ("recipient_domain", "sender_domain"))
_CATEGORIES = _EVENT_ATTRS.index("categories")
_transition_event = attrgetter("message_id", "occurred_at", "dedupe_key", "event_id", "status")
_transition_tail = attrgetter("provider", "source")


def empty(names: Sequence[str]) -> Columns:
    return [[] for _ in names]


def _ms(values: Sequence[datetime]) -> list[int]:
    return [(v - _EPOCH) // _MS for v in values]


def event_columns(items: Sequence[Consumed]) -> Columns:
    """email_events columns of ``items`` (event_row's values, times in epoch ms)."""
    if not items:
        return empty(EVENT_COLUMNS)
    events = [c.event for c in items]
    columns = [list(c) for c in zip(*map(_event_values, events), strict=True)]
    columns[_STATUS] = ["" if s is None else s for s in columns[_STATUS]]
    columns[_OCCURRED] = _ms(columns[_OCCURRED])
    columns[_RECEIVED] = _ms(columns[_RECEIVED])
    for i in _DOMAINS:
        columns[i] = [d or "" for d in columns[i]]
    columns[_CATEGORIES] = [list(c) for c in columns[_CATEGORIES]]
    columns.append([c.partition for c in items])
    columns.append([c.offset for c in items])
    if any(e.inbound is not None for e in events):
        columns.extend(list(c) for c in zip(*(_inbound_values(e.inbound) for e in events), strict=True))
    else:  # no received mail in the batch (the usual case): the columns' empty values
        columns.extend([v] * len(events) for v in _inbound_values(None))
    assert len(columns) == len(EVENT_COLUMNS) and len(INBOUND_COLUMNS) == 6
    return columns


def state_columns(states: Sequence[MessageState]) -> Columns:
    """email_state columns of ``states`` (state_row's values, times in epoch ms)."""
    if not states:
        return empty(STATE_COLUMNS)
    rows = [s.row_values() for s in states]
    return [list(c) for c in zip(*rows, strict=True)]


def transition_columns(transitions: Sequence[Transition]) -> Columns:
    """email_transitions columns of ``transitions`` (transition_row's values, times in epoch ms)."""
    if not transitions:
        return empty(TRANSITION_COLUMNS)
    events = [t.item.event for t in transitions]
    message_id, occurred_at, dedupe_key, event_id, status = (
        list(c) for c in zip(*map(_transition_event, events), strict=True)
    )
    provider, source = (list(c) for c in zip(*map(_transition_tail, events), strict=True))
    return [
        message_id, _ms(occurred_at), dedupe_key, event_id, status,
        ["" if t.previous is None else t.previous for t in transitions],
        [t.current for t in transitions], [t.item.late for t in transitions], provider, source,
        [t.item.partition for t in transitions], [t.item.offset for t in transitions],
    ]  # fmt: skip
