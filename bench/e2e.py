"""Measurement 6: end-to-end latency, webhook acknowledged (2xx at the load generator) -> its message
visible in ClickHouse (the landing insert returned: its materialized views run inside it, so the event
and its message state are then visible), at a fixed offered load of SendGrid batches. Each event is a
new message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from adapters.clickhouse import ClickHouseStore
from bench.http import run_load, start_server, stop_server, write_bodies
from bench.layout import LOAD_CORE
from bench.loadgen import LoadSpec
from bench.processor import wait_assigned
from bench.report import percentile
from bench.workload import SENDGRID_BATCH
from mailpulse.broker import free_port
from mailpulse.runtime import processor
from mailpulse.settings import Settings

# Tuned for latency (the README says so): a short fetch wait.
LATENCY_SETTINGS: dict[str, object] = {"batch_wait_ms": 50}
LEAD_S = 1.0  # the load starts this long after the generator process is launched


class TimedStore(ClickHouseStore):
    """Notes when each loaded batch became visible (its insert returned). The values are read for their
    message ids after the run, so that the measured processor does no more work than usual."""

    def __init__(self, store: ClickHouseStore) -> None:
        super().__init__(store.client, store.database)
        self.loads: list[tuple[float, Sequence[bytes]]] = []

    def load(self, values: Sequence[bytes], token: str) -> None:
        super().load(values, token)
        self.loads.append((time.monotonic(), values))

    def visible(self) -> dict[str, float]:
        """message id -> when it first became visible."""
        seen: dict[str, float] = {}
        for at, values in self.loads:
            for value in values:
                seen.setdefault(orjson.loads(value)["message_id"], at)
        return seen

    def loaded(self) -> int:
        return sum(len(values) for _, values in self.loads)


@dataclass(frozen=True, slots=True)
class E2EFigures:
    offered_per_s: float
    acknowledged: int
    visible: int
    p50_ms: float
    p99_ms: float


def bodies(rate: float, seconds: float, start_wall: float) -> tuple[list[bytes], list[list[str]]]:
    """SendGrid 'delivered' batches, one new message per event, stamped with their planned send time."""
    per_s = rate / SENDGRID_BATCH
    out, ids = [], []
    for b in range(int(per_s * seconds)):
        ts = int(start_wall + b / per_s)
        events, batch_ids = [], []
        for i in range(SENDGRID_BATCH):
            n = b * SENDGRID_BATCH + i
            x = f"e2e{n:010d}"
            email = f"user{n}@example.com"
            events.append(
                {"email": email, "timestamp": ts, "event": "delivered", "smtp-id": f"<{x}@bench>",
                 "sg_event_id": f"ev-{x}", "sg_message_id": f"{x}.filter-1"}
            )  # fmt: skip
            batch_ids.append(f"{x}:{email}")  # what schemas.sendgrid names the message
        out.append(orjson.dumps(events))
        ids.append(batch_ids)
    return out, ids


async def measure(
    settings: Settings, bootstrap: str, store: ClickHouseStore, workdir: Path, rate: float, seconds: float
) -> E2EFigures:
    timed = TimedStore(store)
    port = free_port()
    server = await start_server("ours", bootstrap, settings.status_topic, port)
    try:
        async with processor(settings, bootstrap, timed) as proc:
            await wait_assigned(proc)
            start_mono = time.monotonic() + LEAD_S
            payloads, ids = bodies(rate, seconds, time.time() + LEAD_S)
            spec = LoadSpec(
                host="127.0.0.1", port=port, path="/webhooks/sendgrid/events",
                bodies=write_bodies(workdir, "e2e", payloads),
                events_per_body=[SENDGRID_BATCH] * len(payloads),
                connections=32, duration_s=seconds + 1, rate=rate / SENDGRID_BATCH, start_at=start_mono,
                cycle=False, core=LOAD_CORE,
            )  # fmt: skip
            load = asyncio.create_task(run_load(spec, workdir, "e2e"))
            deadline = start_mono + seconds + 30
            while not load.done() and time.monotonic() < deadline:
                await proc.run_once()
            result = await load
            while timed.loaded() < result.events_ok and time.monotonic() < deadline:
                await proc.run_once()
            await proc.flush()
    finally:
        await stop_server(server)
    visible = timed.visible()
    latencies = [
        (visible[m] - acked) * 1000 for index, acked in result.acked for m in ids[index] if m in visible
    ]
    return E2EFigures(
        rate, result.events_ok, len(latencies), percentile(latencies, 50), percentile(latencies, 99)
    )
