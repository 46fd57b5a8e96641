"""rollup_parts (pure): a range is covered exactly once, each part by a table that can answer it exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from analytics.queries import BUCKETS, rollup_parts
from schemas.migrations.m0005_coarse_rollups import MINUTE

BASE = datetime(2026, 11, 20, tzinfo=UTC)
DIMS = ("provider", "sender_domain", "recipient_domain", "tag")


@given(
    st.integers(0, 3 * 24 * 60),
    st.integers(1, 3 * 24 * 60),
    st.sets(st.sampled_from(DIMS)),
    st.none() | st.sampled_from(BUCKETS),
)
def test_parts_tile_the_range_with_tables_that_fit(
    offset: int, length: int, dims: set[str], bucket: int | None
) -> None:
    start = BASE + timedelta(minutes=offset)
    end = start + timedelta(minutes=length)
    parts = rollup_parts(start, end, dims, bucket)
    assert parts[0][1] == start and parts[-1][2] == end
    for (_, _, hi), (_, lo, _) in pairwise(parts):
        assert hi == lo  # contiguous: no minute twice, none missed
    for rollup, lo, hi in parts:
        assert lo < hi and dims <= set(rollup.dims)
        assert int(lo.timestamp()) % rollup.seconds == 0 == int(hi.timestamp()) % rollup.seconds
        assert bucket is None or bucket % rollup.seconds == 0


def test_a_day_is_read_from_the_hourly_table_and_edges_from_finer_ones() -> None:
    start, end = BASE - timedelta(minutes=7), BASE + timedelta(days=1, minutes=3)
    tables = [(r.table, lo, hi) for r, lo, hi in rollup_parts(start, end, set())]
    assert tables == [
        ("rollup_minute", start, BASE - timedelta(minutes=5)),
        ("rollup_5min", BASE - timedelta(minutes=5), BASE),
        ("rollup_hour", BASE, BASE + timedelta(days=1)),
        ("rollup_minute", BASE + timedelta(days=1), end),
    ]
    assert {r.table for r, _, _ in rollup_parts(start, end, {"tag"})} == {"rollup_hour_tag", MINUTE.table}
    assert [r.table for r, _, _ in rollup_parts(start, end, set(), bucket=60)] == ["rollup_minute"]
