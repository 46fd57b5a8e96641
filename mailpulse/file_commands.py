"""Composition of `mailpulse replay` and `mailpulse dump` (files <-> the pipeline)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from adapters.publisher import KafkaPublisher, create_producer
from mailpulse.event_files import Format, ReplayStats, dump_line, replay_file
from mailpulse.runtime import ingest_config, kafka, open_store, processor
from mailpulse.settings import Settings
from schemas.event import CanonicalEvent
from schemas.times import EARLIEST
from storage.rows import event_from_row
from storage.tables import EVENT_COLUMNS

SHOWN_PROBLEMS = 20
DRAIN_TIMEOUT_S = 600.0


def replay(settings: Settings, path: Path, fmt: Format, process: bool) -> int:
    """0 when every record was published, 1 when some were unreadable (the rest still published)."""
    console = Console(stderr=True)
    if not path.is_file():
        console.print(f"[red]{path}: no such file[/red]")
        return 2
    # An embedded broker lives only as long as this command: load what it replays before exiting.
    process = process or not settings.kafka_bootstrap
    size = path.stat().st_size
    stats, loaded = asyncio.run(_replay(settings, path, size, fmt, process, console))
    console.print(
        f"published {stats.published} events from {path}" + (f", loaded {loaded}" if process else "")
    )
    for bad in stats.bad[:SHOWN_PROBLEMS]:
        console.print(f"  line {bad.line}: {bad.problems}", markup=False, highlight=False)
    if len(stats.bad) > SHOWN_PROBLEMS:
        console.print(f"  ... and {len(stats.bad) - SHOWN_PROBLEMS} more")
    if stats.bad:
        console.print(f"[yellow]{len(stats.bad)} records could not be read (listed above)[/yellow]")
    return 1 if stats.bad else 0


async def _replay(
    settings: Settings, path: Path, size: int, fmt: Format, process: bool, console: Console
) -> tuple[ReplayStats, int]:
    privacy = ingest_config(settings).privacy
    async with kafka(settings) as site:
        producer = create_producer(site.bootstrap, settings.kafka_enable_idempotence)
        await producer.start()
        try:
            # A whole chunk must be acknowledged: allow more than one webhook's publish timeout.
            publisher = KafkaPublisher(
                producer, settings.status_topic, settings.deadletter_topic, settings.publish_timeout_s * 10
            )

            async def publish(events: list[CanonicalEvent]) -> None:
                await publisher.publish([privacy.event(e) for e in events])

            with Progress(
                TextColumn("replay"), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=console
            ) as bar:
                task = bar.add_task("replay", total=size)
                stats = await replay_file(
                    path, fmt, publish, datetime.now(UTC), lambda done: bar.update(task, completed=done)
                )
        finally:
            await producer.stop()
        loaded = await _load(settings, site.bootstrap, site.incarnation, stats.published) if process else 0
    return stats, loaded


async def _load(settings: Settings, bootstrap: str, incarnation: str, records: int) -> int:
    """Run a processor until it has consumed ``records`` records; the records it loaded (ClickHouse
    merges each event once, however many times it is loaded)."""
    store = open_store(settings)
    async with processor(settings, bootstrap, store, incarnation) as proc:
        stop = asyncio.Event()
        running = asyncio.create_task(proc.run(stop))
        deadline = asyncio.get_running_loop().time() + DRAIN_TIMEOUT_S
        while not proc.drained(records):
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        stop.set()
        await running
        return proc.stats.loaded


def dump(settings: Settings, path: Path, since: datetime | None) -> int:
    """Write every stored event (the deduplicated `events` view) as envelopes, oldest first; ``since``
    (aware: `mailpulse dump --since` reads it with ``schemas.times.parse_utc``) keeps the later ones."""
    store = open_store(settings)
    start = (since or EARLIEST).astimezone(UTC)
    sql = (
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM {store.database}.events"
        " WHERE occurred_at >= {start:DateTime64(3, 'UTC')} ORDER BY occurred_at, message_id, dedupe_key"
    )
    written = 0
    with path.open("wb") as out, store.client.query_row_block_stream(sql, {"start": start}) as stream:
        names = stream.source.column_names
        for block in stream:
            for row in block:
                out.write(dump_line(event_from_row(dict(zip(names, row, strict=True)))))
                written += 1
    Console(stderr=True).print(f"wrote {written} events to {path}")
    return 0
