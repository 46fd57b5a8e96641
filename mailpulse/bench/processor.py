"""Measurement 5: the real StatusProcessor (dedupe and reorder on) draining a pre-filled topic into
ClickHouse. Timed from the group assignment until every record is loaded and committed."""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from typing import Any, Self

from mailpulse.runtime import processor
from mailpulse.settings import Settings
from processors.consumer import ProcessorStats, StatusProcessor
from processors.store import ClickHouseStore


async def wait_assigned(proc: StatusProcessor, timeout_s: float = 30.0) -> None:
    """Tansu delays a join by half the session timeout; the bench starts its clock after it."""
    async with asyncio.timeout(timeout_s):
        while not proc.consumer.assignment():  # noqa: ASYNC110 (aiokafka has no assignment event)
            await asyncio.sleep(0.02)


def bench_settings(settings: Settings, topic: str, **overrides: object) -> Settings:
    return settings.model_copy(
        update={
            "status_topic": topic,
            "consumer_group": f"bench-{uuid.uuid4().hex[:8]}",
            "consumer_session_timeout_ms": 2000,
            **overrides,
        }
    )


class CollectorClock:
    """What the cyclic garbage collector did while installed (``gc.callbacks``): collections, their
    seconds, and the objects they freed, which only it could free (they were in reference cycles)."""

    def __init__(self) -> None:
        self.collections = 0
        self.seconds = 0.0
        self.freed = 0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        self.collections += 1
        self.seconds += time.perf_counter() - self._began
        self.freed += info["collected"]

    def __enter__(self) -> Self:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self)


async def drain(
    settings: Settings, bootstrap: str, store: ClickHouseStore, records: int
) -> tuple[float, ProcessorStats, CollectorClock]:
    """Seconds the processor takes to consume, merge, load and commit ``records`` records, and what
    the garbage collector did meanwhile."""
    async with processor(settings, bootstrap, store) as proc:
        await wait_assigned(proc)
        with CollectorClock() as collector:
            started = time.perf_counter()
            while proc.stats.records < records:
                await proc.run_once()
            await proc.flush()
            return time.perf_counter() - started, proc.stats, collector
