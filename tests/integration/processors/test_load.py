"""``processors.load`` on real chDB: the bisection finds exactly the refused values, loads every other
once, and run again on the same batch (a retry after a crash half-way) adds nothing."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest

from adapters.clickhouse import ClickHouseStore
from processors.load import dedup_token, format_ranges, load_or_bisect, parse_ranges
from schemas.event import envelope_json
from tests.schemas.events import sample_events

pytestmark = [pytest.mark.clickhouse]


class Counting(ClickHouseStore):
    """The real store, noting each insert's token."""

    def __init__(self, store: ClickHouseStore) -> None:
        super().__init__(store.client, store.database)
        self.tokens: list[str] = []

    def load(self, values: Sequence[bytes], token: str) -> None:
        self.tokens.append(token)
        super().load(values, token)


def _rows(store: ClickHouseStore) -> int:
    [(n,)] = store.query(f"SELECT count() FROM {store.database}.email_events")
    return int(n)


def test_bisection_loads_the_good_once_and_a_retry_adds_nothing(store: ClickHouseStore) -> None:
    store.client.command(f"SYSTEM STOP MERGES {store.database}.email_events")
    good = [envelope_json(e) for e in sample_events()]
    assert len({orjson.loads(v)["dedupe_key"] for v in good}) == len(good)
    wrong = orjson.loads(good[0]) | {"attempt": "many"}
    values = [*good[:3], b"{not json", *good[3:5], orjson.dumps(wrong), *good[5:]]
    first, again = Counting(store), Counting(store)

    rejected = load_or_bisect(first, values, "t|batch")
    assert [r.index for r in rejected] == [3, 6]
    assert all(r.reason for r in rejected)
    assert _rows(store) == len(good)
    assert [r.index for r in load_or_bisect(again, values, "t|batch")] == [3, 6]
    assert again.tokens == first.tokens  # the same inserts, the same tokens: ClickHouse drops them
    assert len(first.tokens) > 3
    assert _rows(store) == len(good)


def test_a_good_batch_is_one_insert(store: ClickHouseStore) -> None:
    counting = Counting(store)
    good = [envelope_json(e) for e in sample_events()]
    assert load_or_bisect(counting, good, "t|good") == []
    assert counting.tokens == ["t|good"]


def test_tokens_derive_from_ranges_only() -> None:
    ranges = {2: (10, 20), 0: (5, 6)}
    assert dedup_token("topic", ranges) == dedup_token("topic", dict(sorted(ranges.items())))
    assert dedup_token("topic", ranges) != dedup_token("topic", {2: (10, 21), 0: (5, 6)})
    assert dedup_token("topic", ranges) != dedup_token("other", ranges)
    assert parse_ranges(format_ranges(ranges)) == ranges
    assert parse_ranges("not ranges") is None
