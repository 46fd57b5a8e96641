"""The bench's collector clock counts what only the cycle collector frees."""

from __future__ import annotations

import gc

from bench.processor import CollectorClock


def test_collector_clock_counts_what_only_the_collector_frees() -> None:
    """Measurement 5 reports the collector's work during the drain from this clock."""
    gc.collect()
    with CollectorClock() as clock:
        for _ in range(10):  # ten two-object cycles, unreachable
            a, b = _Node(), _Node()
            a.other, b.other = b, a
        del a, b
        gc.collect()
    assert clock not in gc.callbacks
    assert clock.collections >= 1 and clock.freed >= 20 and clock.seconds > 0
    freed = clock.freed
    gc.collect()  # uninstalled: no longer counts
    assert clock.freed == freed


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None
