from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors.stall import StallDetector


def test_partition_with_lag_and_no_commit_progress_is_stuck() -> None:
    d = StallDetector(stuck_after_s=30)
    d.observe(0, committed=100, end=500, now=0)
    d.observe(1, committed=100, end=100, now=0)
    d.observe(0, committed=100, end=600, now=29)
    assert d.stuck(now=29) == []
    assert d.stuck(now=30) == [0]
    assert d.lags() == {0: 500, 1: 0}


def test_progress_or_catching_up_clears_the_stall() -> None:
    d = StallDetector(stuck_after_s=10)
    d.observe(0, committed=1, end=9, now=0)
    d.observe(0, committed=2, end=9, now=20)  # the commit moved
    assert d.stuck(now=25) == []
    d.observe(0, committed=2, end=2, now=40)  # no lag: idle, not stuck
    assert d.stuck(now=100) == []
    d.forget({0})
    assert d.lags() == {}


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 50)), min_size=1, max_size=30))
def test_never_stuck_without_lag(steps: list[tuple[int, int]]) -> None:
    d = StallDetector(stuck_after_s=1)
    for t, (partition, committed) in enumerate(steps):
        d.observe(partition, committed, end=committed, now=float(t))
    assert d.stuck(now=1e9) == []
