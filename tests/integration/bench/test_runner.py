"""Smoke test of `mailpulse bench --quick --json FILE`: every measurement runs and prints a positive
figure, and the JSON holds every figure under its stable key (and the collector clock measurement 5
reports from). The size options shrink --quick further (and are exercised so): a smoke test needs each
measurement to run on some events, not figures worth reading.

It never checks a time or a target (speed is for the bench to report, not for tests to assert). The bench
opens its own chDB directory, so it runs as a subprocess (chDB allows one data path per process).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

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
    "4 bare Kafka drain",
    "4 bare byte insert",
    "4 composed ceiling",
    "4 plain consumer",
    "4 (reference) byte insert, Null table",
    "5 processor  ",
    "5 processor, nil sink",
    "5 (reference) processor, Null landing table",
    "5 processor restarted over",
    "6 end to end p99",
)

# What the README and the issue read from the JSON: these keys stay.
STABLE_KEYS = (
    "processor_events_per_s",
    "processor_vs_ceiling",
    "processor_vs_plain_consumer",
    "processor_own_vs_bare_drain",
    "e2e_p99_ms",
    "restart_drain_vs_fresh",
    "ingest_batched_vs_baseline",
    "ingest_single_vs_baseline",
    "bare_drain_events_per_s",
    "byte_insert_events_per_s",
    "ceiling_events_per_s",
    "plain_consumer_events_per_s",
    "nil_sink_events_per_s",
    "nil_sink_drain_before_events_per_s",
    "nil_sink_drain_after_events_per_s",
    "null_insert_events_per_s",
    "null_landing_events_per_s",
    "restart_drain_events_per_s",
    "restart_stored_events",
)


SMALLER = ("--events", "3000", "--stored-events", "6000", "--http-seconds", "0.5", "--e2e-seconds", "1")


@dataclass(frozen=True, slots=True)
class QuickRun:
    stdout: str
    figures: dict[str, Any]


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "mailpulse.cli", "bench", "--quick", "--json", str(out), *SMALLER],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return QuickRun(done.stdout, orjson.loads(Path(out).read_bytes()))


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_quick_bench_prints_every_measurement_with_a_positive_figure(quick: QuickRun) -> None:
    lines = quick.stdout.splitlines()
    for name in ROWS:
        matching = [line for line in lines if line.startswith(name)]
        assert len(matching) == 1, f"row {name!r} missing or repeated in:\n{quick.stdout}"
        units = "events/s|requests/s|ms|us/event|us/request"
        figure = re.search(rf"\s([\d,]+(?:\.\d+)?)\s+({units})\s", matching[0] + " ")
        assert figure is not None, matching[0]
        assert float(figure.group(1).replace(",", "")) > 0, matching[0]
    assert "seen" in quick.stdout and "cores" in quick.stdout


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_quick_bench_writes_every_stable_key_to_json(quick: QuickRun) -> None:
    figures = quick.figures
    for key in STABLE_KEYS:
        assert isinstance(figures.get(key), (int, float)) and figures[key] > 0, key
    assert figures["restart_stored_events"] >= figures["sizes"]["stored_events"]
    assert figures["e2e_visible"] == figures["e2e_acknowledged"]
    # Judged against the drains on either side of it, not against one measured minutes earlier.
    drains = ("nil_sink_drain_before_events_per_s", "nil_sink_drain_after_events_per_s")
    around = sum(figures[key] for key in drains) / 2
    assert figures["processor_own_vs_bare_drain"] == pytest.approx(figures["nil_sink_events_per_s"] / around)
    assert len(figures["rows"]) == len(quick.stdout.split("\n\n")[0].splitlines()) - 2  # header, rule
