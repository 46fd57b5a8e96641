"""`mailpulse demo`: the whole pipeline in one process on embedded components, checked against truth."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from mailpulse.broker import free_port
from mailpulse.runtime import kafka, open_store, processor, serve_ingest, wait_listening
from mailpulse.settings import Settings
from mailpulse.traffic import Traffic, delivery_rate, generate, status_counts
from processors.store import ClickHouseStore
from schemas.status import EmailStatus

POST_CONCURRENCY = 8
POST_ATTEMPTS = 5
DRAIN_TIMEOUT_S = 120.0
FINAL_OUTBOUND = "'DELIVERED', 'OPENED', 'UNDELIVERED', 'FAILED', 'CANCELED'"
Print = Callable[[str], None]


@dataclass(slots=True)
class Progress:
    posted: int = 0
    accepted: int = 0
    retried: int = 0


async def _post_all(base_url: str, traffic: Traffic, progress: Progress) -> None:
    """Deliver every batch like a provider does: concurrently, retrying non-2xx a bounded number of times."""
    posts = [("/webhooks/sendgrid/events", b) for b in traffic.sendgrid_batches]
    posts += [("/webhooks/twilio/events", b) for b in traffic.twilio_batches]
    random.Random(0).shuffle(posts)  # providers' deliveries interleave
    queue: asyncio.Queue[tuple[str, list[dict[str, Any]]]] = asyncio.Queue()
    for post in posts:
        queue.put_nowait(post)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            path, batch = queue.get_nowait()
            for attempt in range(POST_ATTEMPTS):
                response = await client.post(path, json=batch)
                if response.status_code == 200:
                    progress.posted += len(batch)
                    progress.accepted += int(response.json()["accepted"])
                    break
                progress.retried += 1
                await asyncio.sleep(0.2 * 2**attempt)
            else:
                raise RuntimeError(f"{path} kept answering {response.status_code}: {response.text[:200]}")

    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(POST_CONCURRENCY)))


async def _until(done: Callable[[], bool], tick: Callable[[], Awaitable[None]], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        await tick()
    return True


def summarize(store: ClickHouseStore, traffic: Traffic, say: Print) -> bool:
    """Print ClickHouse's view next to the generator's truth; True when they agree exactly."""
    db = store.database
    got = {
        EmailStatus(s): n
        for s, n in store.query(f"SELECT status, count() FROM {db}.messages GROUP BY status")
    }
    expected = status_counts(traffic.truth)
    [(events,)] = store.query(f"SELECT count() FROM {db}.events")
    expected_events = sum(t.distinct_events for t in traffic.truth.values())
    [(delivered, final)] = store.query(
        "SELECT countIf(status IN ('DELIVERED', 'OPENED')), "
        f"countIf(status IN ({FINAL_OUTBOUND})) FROM {db}.messages"
    )
    got_rate = delivered / final if final else 0.0
    want_rate = delivery_rate(traffic.truth)
    say(f"\n{'status':<12} {'ClickHouse':>10} {'truth':>10}")
    for status in EmailStatus:
        if got.get(status, 0) or expected.get(status, 0):
            say(f"{status.value:<12} {got.get(status, 0):>10} {expected.get(status, 0):>10}")
    say(f"{'messages':<12} {sum(got.values()):>10} {len(traffic.truth):>10}")
    say(f"{'events':<12} {events:>10} {expected_events:>10}   (distinct, after dedupe)")
    say(f"{'delivery':<12} {got_rate:>10.2%} {want_rate:>10.2%}   (DELIVERED+OPENED / final outbound)")
    match = got == {s: n for s, n in expected.items() if n} and events == expected_events
    match = match and abs(got_rate - want_rate) < 1e-12
    say("\nRESULT: MATCH — ClickHouse equals the generator's ground truth" if match else "\nRESULT: MISMATCH")
    return match


async def run_demo(settings: Settings, messages: int, seed: int | None, say: Print = print) -> bool:
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    started = time.monotonic()
    traffic = generate(messages, seed)
    deliveries = sum(map(len, traffic.sendgrid_batches)) + sum(map(len, traffic.twilio_batches))
    say(f"mailpulse demo: {messages} messages, {deliveries} webhook events (seed {seed})")
    store = open_store(settings)
    for table in ("email_events", "email_state"):  # a demo starts clean, so truth and tables compare
        store.client.command(f"TRUNCATE TABLE IF EXISTS {store.database}.{table}")
    say(f"ClickHouse: {settings.clickhouse_dsn()} (database {store.database})")
    async with kafka(settings) as bootstrap:
        say(f"Kafka: {bootstrap} (topics {settings.status_topic}, {settings.deadletter_topic})")
        stop_ingest, stop_processor = asyncio.Event(), asyncio.Event()
        port = free_port() if settings.ingest_port == 0 else settings.ingest_port
        ingest = asyncio.create_task(serve_ingest(settings, bootstrap, stop_ingest, port))
        await wait_listening(settings.ingest_host, port)
        say(f"ingest: http://{settings.ingest_host}:{port}")
        async with processor(settings, bootstrap, store) as proc:
            consuming = asyncio.create_task(proc.run(stop_processor))
            progress = Progress()
            posting = asyncio.create_task(
                _post_all(f"http://{settings.ingest_host}:{port}", traffic, progress)
            )

            async def report() -> None:
                await asyncio.sleep(1.0)
                s = proc.stats
                say(
                    f"  posted {progress.posted:>7}/{deliveries}  acked by Kafka {progress.accepted:>7}  "
                    f"loaded {s.loaded_events:>7} events  duplicates dropped {s.duplicates:>6}  "
                    f"late {s.late:>6}  waiting {proc.buffered:>5}  loads {s.batches}"
                )

            await _until(posting.done, report, DRAIN_TIMEOUT_S)
            await posting  # re-raises a delivery failure
            drained = await _until(lambda: proc.drained(progress.accepted), report, DRAIN_TIMEOUT_S)
            stop_processor.set()
            await consuming
        stop_ingest.set()
        await ingest
    if not drained:
        say("processor did not catch up in time")
    say(f"done in {time.monotonic() - started:.1f}s")
    return summarize(store, traffic, say) and drained


def main(settings: Settings, messages: int, seed: int | None) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        return 0 if asyncio.run(run_demo(settings, messages, seed)) else 1
    return 130
