"""`mailpulse demo`: the whole pipeline in one process, fed by the Email API simulator, checked against
the simulator's ground truth.

In one process: embedded Kafka (unless configured), ClickHouse (chDB unless configured), ingest on a
free loopback port, the processor, the Email API simulator (accelerated time) posting Event Streams
webhooks to ingest while dropping ``drop_rate`` of them, and the poller reading the simulator's API.
A traffic driver posts ``messages`` emails as send requests. Once every email has settled in the
simulator and the poller has completed a cycle that re-polled everything still open, the processor
drains and the demo compares ClickHouse's ``messages`` with the truth (``simulator.truth``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from adapters.clickhouse import ClickHouseStore
from adapters.journal import Journal, forget_segments
from mailpulse.broker import free_port
from mailpulse.demo_alert import SpikeOutcome, failure_spike, spam_spike, with_demo_rules
from mailpulse.redact import redact_dsn
from mailpulse.runtime import (
    api_token,
    dashboard_url,
    kafka,
    open_store,
    poller,
    processor,
    serve_dashboard,
    serve_ingest,
    shown_token,
    wait_listening,
)
from mailpulse.settings import Settings
from mailpulse.signals import until_signal
from poller.cycle import Poller
from processors.status_processor import StatusProcessor
from schemas import outcomes
from schemas.outcomes import Figures
from schemas.status import EmailStatus
from simulator.core import EmailTruth
from simulator.driver import Traffic, drive
from simulator.payloads import Signer
from simulator.server import SimulatorConfig, SimulatorServer
from simulator.truth import Comparison, Seen, compare, status_counts, webhook_misses
from simulator.webhooks import WebhookPolicy, WebhookTarget
from storage.migrations import DERIVED_TABLES

Print = Callable[[str], None]
DROP_RATE = 0.3
ACCELERATION = 2000.0  # one real second is 33 API minutes: hours of lifecycles in seconds
API_SPAN = timedelta(hours=8)  # the API clock starts this far back, so event times end near now
SIM_RATE_LIMIT = 100.0  # requests per second before the simulator answers 429
SETTLE_TIMEOUT_S = 150.0
DRAIN_TIMEOUT_S = 120.0
_STATUS_COLUMNS = [f"{s.value.lower()}_at" for s in EmailStatus]


@dataclass(frozen=True, slots=True)
class DemoOptions:
    messages: int = 10_000
    seed: int | None = None
    drop_rate: float = DROP_RATE
    acceleration: float = ACCELERATION
    poller: bool = True
    spike: bool = True  # end with a failure and a spam spike, each firing and resolving an alert
    dashboard: bool = False  # then serve /dashboard (printing its URL) until ``stop`` is set


@dataclass(slots=True)
class Outcome:
    comparison: Comparison
    drained: bool
    webhook_misses: int
    seconds: float
    spike: SpikeOutcome | None = None
    spam: SpikeOutcome | None = None

    @property
    def match(self) -> bool:
        return self.comparison.ok and self.drained

    @property
    def ok(self) -> bool:
        """The tables match the truth and, if the spikes ran, their alerts fired and resolved."""
        return self.match and all(s is None or s.ok for s in (self.spike, self.spam))


def read_messages(store: ClickHouseStore) -> dict[str, Seen]:
    """Every message's current status and the first time of that status, from ``messages``."""
    rows = store.query(
        f"SELECT message_id, status, {', '.join(_STATUS_COLUMNS)} FROM {store.database}.messages"
    )
    seen = {}
    for message_id, status, *times in rows:
        at = dict(zip(_STATUS_COLUMNS, times, strict=True)).get(f"{str(status).lower()}_at")
        seen[str(message_id)] = Seen(str(status), at.replace(tzinfo=UTC) if at and not at.tzinfo else at)
    return seen


@contextlib.asynccontextmanager
async def ingest_server(
    settings: Settings, bootstrap: str, journal: Journal | None = None
) -> AsyncIterator[str]:
    """Ingest on a free loopback port; yields its base URL."""
    stop = asyncio.Event()
    port = free_port() if settings.ingest_port == 0 else settings.ingest_port
    task = asyncio.create_task(serve_ingest(settings, bootstrap, stop, port, journal))
    await wait_listening(settings.ingest_host, port)
    try:
        yield f"http://{settings.ingest_host}:{port}"
    finally:
        stop.set()
        await task


def simulator_config(settings: Settings, ingest_url: str, options: DemoOptions, seed: int) -> SimulatorConfig:
    token = settings.twilio_auth_token
    return SimulatorConfig(
        acceleration=options.acceleration,
        start=datetime.now(UTC) - API_SPAN,
        seed=seed,
        rate_limit=SIM_RATE_LIMIT,
        webhooks=(WebhookTarget(f"{ingest_url}/webhooks/twilio/events"),),
        policy=WebhookPolicy(drop_rate=options.drop_rate),
        signer=Signer(twilio_auth_token=token.get_secret_value() if token else None),
    )


def demo_checkpoint(settings: Settings) -> Path:
    return settings.data_dir / "demo-poller.sqlite3"


def reset_checkpoint(settings: Settings) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{demo_checkpoint(settings)}{suffix}").unlink(missing_ok=True)


def poll_settings(settings: Settings, base_url: str) -> Settings:
    """The demo's poller: fast cycles, reconciliation after one real second (minutes of API time)."""
    return settings.model_copy(
        update={
            "email_api_base_url": base_url,
            "poll_interval_s": 0.5,
            "poll_reconcile_after_s": 1.0,
            "poll_rate_per_s": 80.0,
            "poll_checkpoint": demo_checkpoint(settings),
        }
    )


async def _until(done: Callable[[], bool], timeout_s: float, tick: Callable[[], None]) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        tick()
        await asyncio.sleep(1.0)
    return True


async def run_demo(
    settings: Settings,
    options: DemoOptions,
    say: Print = print,
    store: ClickHouseStore | None = None,
    stop: asyncio.Event | None = None,
) -> Outcome:
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**31)
    started = time.monotonic()
    say(
        f"mailpulse demo: {options.messages} emails through the Email API simulator (seed {seed}), "
        f"{options.drop_rate:.0%} of webhooks dropped, poller {'on' if options.poller else 'off'}"
    )
    store = store or open_store(settings)
    # Compare one run with its truth; the alert history and rollup start afresh too, and no batch
    # recorded by an earlier run is loaded again.
    tables = (
        "email_events",
        "email_state",
        "email_transitions",
        *DERIVED_TABLES,
        "alerts",
        "processor_batches",
    )
    for table in tables:
        store.client.command(f"TRUNCATE TABLE IF EXISTS {store.database}.{table}")
    reset_checkpoint(settings)  # the poller starts from scratch too
    forget_segments(settings.journal_dir)  # and nothing of an earlier demo is published again
    say(f"ClickHouse: {redact_dsn(settings.clickhouse_dsn())} (database {store.database})")
    async with (
        kafka(settings, journal=True) as site,
        ingest_server(settings, site.bootstrap, site.journal) as ingest_url,
    ):
        bootstrap = site.bootstrap
        say(f"Kafka: {redact_dsn(bootstrap)}   ingest: {ingest_url}")
        async with processor(settings, bootstrap, store, site.incarnation) as proc:
            stop_processor = asyncio.Event()
            consuming = asyncio.create_task(proc.run(stop_processor))
            config = simulator_config(settings, ingest_url, options, seed)
            async with SimulatorServer(config) as sim:
                say(f"Email API simulator: {sim.base_url} (time x{options.acceleration:g})")
                polling = poll_settings(settings, sim.base_url)
                async with poller(polling, bootstrap, journal=site.journal) as poll:
                    published = await _run_traffic(sim, poll, proc, options, seed, polling, say)
                records = sim.send_stats.accepted_events + published
                drained = await _until(lambda: proc.drained(records), DRAIN_TIMEOUT_S, lambda: None)
                truth = sim.simulator.truth(sim.clock.now())
                misses = webhook_misses(truth, sim.send_stats.delivered)
            seen = read_messages(store)
            outcome = Outcome(compare(truth, seen), drained, misses, time.monotonic() - started)
            _summary(outcome, truth, seen, say)
            alerting = with_demo_rules(settings)  # the dashboard draws the thresholds of these rules
            if options.spike:
                outcome.spike = await failure_spike(alerting, bootstrap, store, ingest_url, say)
                outcome.spam = await spam_spike(alerting, bootstrap, store, ingest_url, say)
            if options.dashboard:
                await _serve_dashboard(alerting, store, ingest_url, stop or asyncio.Event(), say)
            stop_processor.set()
            await consuming
    return outcome


async def _serve_dashboard(
    settings: Settings, store: ClickHouseStore, ingest_url: str, stop: asyncio.Event, say: Print
) -> None:
    """The dashboard over what the demo loaded; ingest and the processor keep running behind it."""
    token = api_token(settings)
    port = settings.dashboard_port or free_port()
    serving = asyncio.create_task(serve_dashboard(settings, store, token, port, stop))
    await wait_listening(settings.dashboard_host, port)
    say(f"\ndashboard: {dashboard_url(settings.dashboard_host, port, shown_token(settings, token))}")
    say(f"(ingest still takes webhooks on {ingest_url}; Ctrl-C ends the demo)")
    await serving


async def _run_traffic(
    sim: SimulatorServer,
    poll: Poller,
    proc: StatusProcessor,
    options: DemoOptions,
    seed: int,
    polling: Settings,
    say: Print,
) -> int:
    """Drive the traffic, let the simulator settle, and let the poller finish; events it published."""
    stop_poller = asyncio.Event()
    polling_task = asyncio.create_task(poll.run(stop_poller)) if options.poller else None

    def report() -> None:
        plan, sent, p, s = sim.plan_stats, sim.send_stats, poll.stats, proc.stats
        say(
            f"  API {sim.clock.now():%H:%M}  webhook events sent {sent.delivered_events:>6} "
            f"dropped {plan.dropped:>5}  poller requests {p.requests:>5} (429: {p.throttled}) "
            f"published {p.published:>6}  "
            f"records loaded {s.loaded:>6} dead-lettered {s.dead_letters:>4}"
        )

    try:
        async with httpx.AsyncClient(base_url=sim.base_url, timeout=30) as client:
            driving = asyncio.create_task(drive(client, Traffic(options.messages, seed=seed)))
            await _until(driving.done, SETTLE_TIMEOUT_S, report)
            traffic = await driving
        say(
            f"  {traffic.emails} emails sent in {traffic.requests} requests "
            f"({traffic.throttled} answered 429)"
        )
        if not await _until(sim.quiet, SETTLE_TIMEOUT_S, report):
            raise TimeoutError("the simulator did not settle in time")
        if polling_task is not None:
            # A cycle that starts once everything unsettled is due re-polls all of it: after that the
            # poller has seen every email's final status.
            final = time.monotonic() + polling.poll_reconcile_after_s
            await _until(lambda: poll.stats.last_cycle_started > final, SETTLE_TIMEOUT_S, report)
    finally:
        stop_poller.set()
        if polling_task is not None:
            await polling_task
    report()
    return poll.stats.published


def summary_figures(statuses: Iterable[str]) -> Figures:
    """The figures of ``schemas.outcomes`` over every message's final status (the simulator reports no
    clicks)."""
    return outcomes.tally((EmailStatus(s), False) for s in statuses)


def _summary(outcome: Outcome, truth: list[EmailTruth], seen: dict[str, Seen], say: Print) -> None:
    want, got = status_counts(truth), Counter(s.status for s in seen.values())
    say(f"\n{'status':<12} {'ClickHouse':>10} {'truth':>10}")
    for status in EmailStatus:
        if want[status.value] or got[status.value]:
            say(f"{status.value:<12} {got[status.value]:>10} {want[status.value]:>10}")
    say(f"{'emails':<12} {len(seen):>10} {len(truth):>10}")
    mine = summary_figures(s.status for s in seen.values())
    truths = summary_figures(t.status.value for t in truth)
    say(f"\nby final status (docs/figures.md) {'ClickHouse':>10} {'truth':>10}")
    for name in outcomes.CLASSES:
        rate = mine.rates()[name], truths.rates()[name]
        say(f"{name:<12} {outcomes.human_rate(rate[0]):>10} {outcomes.human_rate(rate[1]):>10}")
    say(f"{'outcomes':<12} {mine.outcomes:>10} {truths.outcomes:>10}   (the four add up to 100%)")
    c = outcome.comparison
    say(
        f"\nwebhooks alone: the current status of {outcome.webhook_misses} of {len(truth)} emails never "
        "arrived by webhook (dropped, or given up after retries)"
    )
    say(f"status and first time of that status equal to the millisecond: {c.matched} of {c.emails} emails")
    if not outcome.drained:
        say("the processor did not catch up in time")
    if not c.ok:
        say(f"differences: {c.describe()}")
    say(f"done in {outcome.seconds:.1f}s")
    if outcome.match:
        say("\nRESULT: MATCH — ClickHouse equals the simulator's ground truth")
    else:
        say("\nRESULT: MISMATCH")


def main(settings: Settings, options: DemoOptions) -> int:
    async def run() -> Outcome:
        # Ctrl-C ends the dashboard, then everything shuts down in order.
        return await run_demo(settings, options, stop=await until_signal())

    with contextlib.suppress(KeyboardInterrupt):
        return 0 if asyncio.run(run()).ok else 1
    return 130
