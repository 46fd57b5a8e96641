"""With 30% of webhooks dropped, webhooks alone miss the ground truth and webhooks + poller reach it.

"Reach the ground truth" (README): every email the simulator has is a message in ClickHouse with the
simulator's current status, first seen at the time the email got that status (to the millisecond),
and ClickHouse has no other email. Everything runs for real: simulator and ingest over loopback HTTP,
the Tansu broker, the processor, chDB.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from adapters.clickhouse import ClickHouseStore
from mailpulse.demo import DemoOptions, Outcome, read_messages, run_demo
from mailpulse.demo_alert import (
    RECOVERY_DELIVERIES,
    SPAM_DELIVERIES,
    SPAM_PROVIDER,
    SPAM_RECOVERY,
    SPAM_REPORTS,
    SPIKE_BOUNCES,
    SPIKE_DOMAIN,
)
from mailpulse.runtime import poller
from mailpulse.settings import Settings
from processors.status_processor import StatusProcessor
from simulator.driver import Traffic, drive
from simulator.server import SimulatorConfig, SimulatorServer
from simulator.truth import compare, webhook_misses
from simulator.webhooks import WebhookPolicy, WebhookTarget
from tests.integration.pipeline import running_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
EMAILS = 1500
CLASSES = [["delivered"], ["bounced"], ["failed"], ["canceled"]]
ACCELERATION = 3000.0  # the longest lifecycle (about 6 API hours) takes about 7 s


async def drained(proc: StatusProcessor, records: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not proc.drained(records):
        if time.monotonic() > deadline:
            raise TimeoutError(f"processor handled {proc.stats.records} of {records} records")
        await asyncio.sleep(0.1)


def test_webhooks_alone_miss_the_truth_and_the_poller_completes_it(
    settings: Settings, store: ClickHouseStore
) -> None:
    async def scenario() -> None:
        async with running_pipeline(settings, store) as (ingest, proc):
            hook = WebhookTarget(f"{ingest.base_url}webhooks/twilio/events")
            config = SimulatorConfig(
                acceleration=ACCELERATION, seed=11, webhooks=(hook,), policy=WebhookPolicy(drop_rate=0.3)
            )
            async with SimulatorServer(config) as sim:
                async with httpx.AsyncClient(base_url=sim.base_url, timeout=30) as client:
                    await drive(client, Traffic(EMAILS, schedule_ahead_s=(120.0, 1800.0), seed=11))
                await sim.wait_quiet(60)
                sent = sim.send_stats
                assert sent.given_up == sent.discarded == 0
                await drained(proc, sent.accepted_events)
                truth = sim.simulator.truth(sim.clock.now())
                assert len(truth) >= EMAILS

                webhooks_only = compare(truth, read_messages(store))
                misses = webhook_misses(truth, sent.delivered)
                assert not webhooks_only.ok, "with 30% dropped, webhooks alone cannot be right"
                assert misses > 0.2 * len(truth)
                assert len(webhooks_only.wrong_status) + len(webhooks_only.missing) == misses
                assert webhooks_only.unexpected == [] and webhooks_only.wrong_time == []

                polling = settings.model_copy(
                    update={"email_api_base_url": sim.base_url, "poll_rate_per_s": 200.0}
                )
                assert settings.kafka_bootstrap is not None
                async with poller(polling, settings.kafka_bootstrap) as poll:
                    assert await poll.cycle_safely()
                    published = poll.stats.published
                await drained(proc, sent.accepted_events + published)
                together = compare(truth, read_messages(store))
                assert together.ok, together.describe()
                assert together.matched == len(truth)

    asyncio.run(asyncio.wait_for(scenario(), 150))


def test_the_demo_reaches_the_truth_with_webhooks_and_poller_together(
    settings: Settings, store: ClickHouseStore
) -> None:
    said: list[str] = []
    options = DemoOptions(messages=800, seed=3, drop_rate=0.3, acceleration=ACCELERATION, dashboard=True)
    demo_settings = settings.model_copy(update={"ingest_port": 0, "dashboard_port": 0})
    summaries: list[dict[str, Any]] = []

    async def open_dashboard(shown: asyncio.Event, stop: asyncio.Event) -> None:
        """What a user does with the printed URL: the page and its API answer, with the demo's data."""
        await shown.wait()
        [url] = [line.removeprefix("\ndashboard: ") for line in said if line.startswith("\ndashboard: ")]
        page, token = url.split("#token=")
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(page)).status_code == 200
            api = page.replace("/dashboard", "/api/summary")
            answer = await client.get(api, headers={"authorization": f"Bearer {unquote(token)}"})
            summaries.append(answer.json())
        stop.set()

    async def scenario() -> Outcome:
        stop, shown = asyncio.Event(), asyncio.Event()

        def say(line: str) -> None:
            said.append(line)
            if line.startswith("\ndashboard: "):
                shown.set()

        browsing = asyncio.create_task(open_dashboard(shown, stop))
        outcome = await run_demo(demo_settings, options, say, store, stop)
        await browsing
        return outcome

    outcome = asyncio.run(asyncio.wait_for(scenario(), 180))
    [summary] = summaries
    # The dashboard shows the demo's mail: the simulator's messages plus the spike's.
    assert summary["volumes"]["DELIVERED"] > 0 and summary["messages"] > SPIKE_BOUNCES
    assert outcome.match, "\n".join(said)
    assert outcome.webhook_misses > 0
    assert "\nRESULT: MATCH — ClickHouse equals the simulator's ground truth" in said
    # The failure spike after the comparison: its alert fired once, then resolved, as the demo says.
    assert outcome.spike is not None and outcome.spike.ok, "\n".join(said)
    assert outcome.spike.fired and outcome.spike.fired.key == SPIKE_DOMAIN
    # The processor loads what has arrived: an evaluation may see part of a posted burst, so the
    # volumes are bounded, not exact. Firing needs bounces only; resolving, as many deliveries.
    assert outcome.spike.fired.value == 1.0 and outcome.spike.fired.volume <= SPIKE_BOUNCES
    resolved = outcome.spike.resolved
    assert resolved and resolved.value is not None and resolved.value <= resolved.threshold
    assert 2 * SPIKE_BOUNCES <= resolved.volume <= SPIKE_BOUNCES + RECOVERY_DELIVERIES
    states = store.query(
        f"SELECT state FROM {store.database}.alerts WHERE key = {{key:String}} ORDER BY at",
        {"key": SPIKE_DOMAIN},
    )
    assert states == [("firing",), ("resolved",)]
    assert any(line.startswith("  alert FIRING") for line in said)
    # Then the spam spike at one mailbox provider: over the 0.3% limit, then under it.
    spam = outcome.spam
    assert spam is not None and spam.ok, "\n".join(said)
    assert spam.fired and spam.fired.key == SPAM_PROVIDER and spam.fired.metric == "spam_rate"
    assert spam.fired.value is not None and spam.fired.value > spam.fired.threshold == 0.003
    assert spam.fired.volume <= SPAM_DELIVERIES + 200  # the spike, and the simulator's mail there
    assert spam.resolved and spam.resolved.value is not None
    assert 0 < spam.resolved.value <= 0.003 and spam.resolved.volume >= SPAM_REPORTS / 0.003
    assert spam.resolved.volume <= SPAM_DELIVERIES + SPAM_RECOVERY + 200
    states = store.query(
        f"SELECT state FROM {store.database}.alerts WHERE metric = 'spam_rate' ORDER BY at",
    )
    assert states == [("firing",), ("resolved",)]
    assert sum(line.startswith("  alert FIRING") for line in said) == 2
    rates = {line.split()[0]: line.split()[1:3] for line in said if line.split()[:1] in CLASSES}
    assert set(rates) == {"delivered", "bounced", "failed", "canceled"}
    for clickhouse_rate, truth_rate in rates.values():
        assert clickhouse_rate == truth_rate and clickhouse_rate.endswith("%")
    assert sum(float(r[0].rstrip("%")) for r in rates.values()) == pytest.approx(100, abs=0.03)
