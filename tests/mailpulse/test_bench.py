"""Smoke test of `mailpulse bench --quick`: every measurement runs and prints a positive figure (and
the collector clock measurement 5 reports from).

It never checks a time or a target (speed is for the bench to report, not for tests to assert). The bench
opens its own chDB directory, so it runs as a subprocess (chDB allows one data path per process).
"""

from __future__ import annotations

import gc
import re
import subprocess
import sys

import pytest

from mailpulse.bench.processor import CollectorClock

ROWS = (
    "1 Kafka producer ceiling",
    "1 (reference) producer, own record batches",
    "2 ingest SendGrid x100 throughput",
    "2 ingest SendGrid x100 latency p50",
    "2 ingest Twilio single throughput",
    "2 ingest Twilio single latency p99",
    "3 baseline SendGrid x100",
    "3 baseline Twilio single",
    "2/3 server CPU, SendGrid x100",
    "2/3 server CPU, Twilio single",
    "8 flood longest loop stall, 5 MB of 0s, over the bound",
    "8 flood longest loop stall, {}s at the bound",
    "8 flood longest loop stall, 5 MB of 0s, bound lifted",
    "4 ClickHouse insert ceiling (Native)",
    "4 ClickHouse insert ceiling (Arrow)",
    "5 processor (dedupe + reorder)",
    "5 processor stages",
    "6 end to end p99",
    "7 processor state",
)


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_quick_bench_prints_every_measurement_with_a_positive_figure() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mailpulse.cli", "bench", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for name in ROWS:
        matching = [line for line in lines if line.startswith(name)]
        assert len(matching) == 1, f"row {name!r} missing or repeated in:\n{done.stdout}"
        units = "events/s|requests/s|ms|bytes/message|us/event|us/request"
        figure = re.search(rf"\s([\d,]+(?:\.\d+)?)\s+({units})\s", matching[0] + " ")
        assert figure is not None, matching[0]
        assert float(figure.group(1).replace(",", "")) > 0, matching[0]
    assert "seen" in done.stdout and "cores" in done.stdout


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


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
