"""ClickHouseStore against the real engine (chDB): state rebuild finds exactly the asked messages,
whatever characters their ids hold (the ids are written into the query as literals)."""

from __future__ import annotations

import gc
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.batch import Consumed
from processors.columns import empty, event_columns
from processors.rows import event_row
from processors.store import ClickHouseStore, string_lists
from schemas.status import EmailStatus
from schemas.tables import EVENT_COLUMNS, STATE_COLUMNS, TRANSITION_COLUMNS
from tests.processors.test_state_properties import ev

pytestmark = [pytest.mark.clickhouse]

IDS = [
    "plain", "it's", "back\\slash", "tab\there", "new\nline", "tick`", "ends with \\", "é\U0001f600",
    "quote' OR '1'='1", "\\'",
]  # fmt: skip


def test_load_events_finds_ids_that_need_escaping(store: ClickHouseStore) -> None:
    events = [ev(EmailStatus.DELIVERED, 1, message_id=m, event_id=f"e{i}") for i, m in enumerate(IDS)]
    store.write([event_row(e, 0, i) for i, e in enumerate(events)], [], [], "escaping")
    stored = {e.message_id: [e] for e in events}
    assert store.load_events(IDS) == stored
    assert store.load_events(["it"]) == {}
    some = ["quote' OR '1'='1", "plain"]
    assert store.load_events(some) == {m: stored[m] for m in some}


def test_load_events_finds_messages_among_thousands_of_long_ids(store: ClickHouseStore) -> None:
    """A batch of new messages looks up every id at once; SendGrid ids hold the recipient's address,
    so the lookup must stay under ClickHouse's max_query_size (262,144 bytes) whatever the ids' length,
    counted in bytes: an emoji is one character and four bytes."""
    sg_message_id = "filter0001p1las1-12345-5F2A3B4C-1.0"
    long = [f"{i:05d}.{sg_message_id}:first.last.{i}@unit.example.co.uk" for i in range(6000)]
    wide = [f"{i:05d}:" + "\U0001f4e7" * 40 for i in range(3000)]
    wanted = [long[17], long[5999], wide[0], wide[2999]]
    events = [ev(EmailStatus.DELIVERED, 1, message_id=m, event_id=f"long-{i}") for i, m in enumerate(wanted)]
    store.write([event_row(e, 0, i) for i, e in enumerate(events)], [], [], "long-ids")
    assert store.load_events(long + wide) == {e.message_id: [e] for e in events}


IDS_WITHOUT_QUOTES = st.text(st.characters(codec="utf-8", exclude_characters="'\\`\t\n"), max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.lists(IDS_WITHOUT_QUOTES, max_size=60), st.integers(1, 8), st.integers(8, 120))
def test_string_lists_cut_ids_by_count_and_bytes(values: list[str], most: int, most_bytes: int) -> None:
    literals = list(string_lists(values, most, most_bytes))
    back = [v for literal in literals for v in literal[2:-2].split("','")]
    assert back == values  # every id once, in order (no id here holds a quote)
    for literal in literals:
        inside = literal[2:-2].split("','")
        assert len(inside) <= most
        assert len(literal.encode()) <= most_bytes or len(inside) == 1


def test_inserts_land_after_a_column_changed_under_the_store(store: ClickHouseStore) -> None:
    """The store reads a table's column types once; a column widened meanwhile (a migration run by
    another process) still takes the store's inserts: ClickHouse converts the Native column."""
    first, second = (ev(EmailStatus.DELIVERED, 1, message_id=m) for m in ("before", "after"))
    store.write([event_row(first, 0, 0)], [], [], "before-change")
    store.client.command(f"ALTER TABLE {store.database}.email_events MODIFY COLUMN attempt Nullable(UInt64)")
    store.write([event_row(second, 0, 1)], [], [], "after-change")
    assert store.load_events(["before", "after"]) == {"before": [first], "after": [second]}


class _Categories(list[str]):
    """A row's categories value that can be watched with a weak reference."""


def test_an_insert_frees_its_rows_without_the_cycle_collector(store: ClickHouseStore) -> None:
    """The driver's insert context is a reference cycle holding the data it was given; the store
    hands it a list of its own and empties it, so a batch's rows go as soon as the caller drops them."""
    events = [ev(EmailStatus.DELIVERED, i, message_id=f"freed-{i}") for i in range(3)]
    columns = event_columns([Consumed(0, i, e) for i, e in enumerate(events)])
    categories = EVENT_COLUMNS.index("categories")
    columns[categories] = [_Categories(["welcome"]) for _ in events]
    watched = [weakref.ref(value) for value in columns[categories]]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        store.write_columns(columns, empty(STATE_COLUMNS), empty(TRANSITION_COLUMNS), "freed")
        del columns
        assert [ref() for ref in watched] == [None, None, None]
    finally:
        if was_enabled:
            gc.enable()
    stored = store.load_events([e.message_id for e in events])
    assert [stored[e.message_id][0].categories for e in events] == [("welcome",)] * 3
