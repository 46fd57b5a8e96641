"""The demo's spikes, each firing an alert that then resolves. Failure: one recipient domain starts
bouncing everything, then recovers. Spam: recipients at one mailbox provider report 2% of the mail as
spam (Gmail's and Yahoo's limit is 0.3%), then many more deliveries bring the rate under the limit.
Posted as SendGrid webhooks to the demo's ingest, so each spike travels the real pipeline (Kafka,
processor, rollup) before the alert runner sees it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from adapters.clickhouse import ClickHouseStore
from alerting.runner import AlertRunner
from alerting.state_machine import Notification
from ingest.paths import SENDGRID_EVENTS
from mailpulse.runtime import alerts_runner
from mailpulse.settings import Settings

SPIKE_DOMAIN = "spike.example.net"
SPIKE_BOUNCES = 200  # every one fails: the domain's failure rate is 100%
RECOVERY_DELIVERIES = 300  # then 200 failed of 500 outcomes: 40%, under the threshold
SPAM_PROVIDER, SPAM_DOMAIN = "yahoo", "yahoo.com"
SPAM_DELIVERIES = 400
SPAM_REPORTS = 8  # of the 400 delivered: 2%, over the 0.3% limit
SPAM_RECOVERY = 3600  # then 8 of 4,000 delivered and more: at most 0.2%, under it
PHASE_TIMEOUT_S = 60.0
RULES = """# Written by `mailpulse demo`: the rule its failure spike trips.
[[rule]]
name = "demo-domain-failure-rate"
metric = "failure_rate"
threshold = 0.5
window_s = 300
by = "recipient_domain"
min_volume = 50
for_s = 0
cooldown_s = 600

[[rule]]
name = "demo-spam-rate"
metric = "spam_rate"
threshold = 0.003
window_s = 300
by = "mailbox_provider"
min_volume = 200
for_s = 0
cooldown_s = 600
"""


@dataclass(slots=True)
class SpikeOutcome:
    fired: Notification | None = None
    resolved: Notification | None = None

    @property
    def ok(self) -> bool:
        return self.fired is not None and self.resolved is not None


def _event(kind: str, i: int, at: int, domain: str = SPIKE_DOMAIN, **extra: Any) -> dict[str, Any]:
    name = "spike" if domain == SPIKE_DOMAIN else "spam"
    return {
        "email": f"user{i}@{domain}",
        "timestamp": at,
        "event": kind,
        "sg_event_id": f"demo-{name}-{kind}-{i}",
        "sg_message_id": f"demo{name}{i:05d}.filter0001.1.1.0",
        "category": [f"demo-{name}"],
        **extra,
    }


def spike_batches(start: int, count: int, outcome: str) -> list[list[dict[str, Any]]]:
    """``count`` messages from ``start``: processed, then bounced or delivered, in webhook batches."""
    now = int(time.time()) - 1
    events = []
    for i in range(start, start + count):
        events.append(_event("processed", i, now))
        if outcome == "bounce":
            events.append(
                _event("bounce", i, now, type="bounce", status="5.1.1", reason="550 5.1.1 no such user")
            )
        else:
            events.append(_event("delivered", i, now, response="250 OK"))
    return [events[i : i + 100] for i in range(0, len(events), 100)]


def spam_batches(start: int, count: int, reports: int) -> list[list[dict[str, Any]]]:
    """``count`` messages to ``SPAM_DOMAIN`` from ``start``, processed and delivered; the first
    ``reports`` of them reported as spam."""
    now = int(time.time()) - 1
    events = []
    for i in range(start, start + count):
        events.append(_event("processed", i, now, SPAM_DOMAIN))
        events.append(_event("delivered", i, now, SPAM_DOMAIN, response="250 OK"))
        if i < start + reports:
            events.append(_event("spamreport", i, now, SPAM_DOMAIN))
    return [events[i : i + 500] for i in range(0, len(events), 500)]


async def _post(client: httpx.AsyncClient, batches: list[list[dict[str, Any]]]) -> None:
    for batch in batches:
        answer = await client.post(SENDGRID_EVENTS, json=batch)
        answer.raise_for_status()


async def _until(runner: AlertRunner, state: str, key: str = SPIKE_DOMAIN) -> Notification | None:
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while time.monotonic() < deadline:
        for note in await runner.tick():
            if note.key == key and note.state == state:
                return note
        await asyncio.sleep(1.0)
    return None


def _describe(note: Notification) -> str:
    digits, volume = (2, "delivered") if note.metric == "spam_rate" else (0, "outcomes")
    value = "n/a" if note.value is None else f"{note.value:.{digits}%}"
    return (
        f"{note.rule} {note.dimension}={note.key}: {note.metric} {value} over {note.volume} {volume} "
        f"(threshold {note.threshold:.{digits}%})"
    )


def with_demo_rules(settings: Settings) -> Settings:
    """The settings with the demo's alert rules, written under the data directory."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    rules = settings.data_dir / "demo-alerts.toml"
    rules.write_text(RULES)
    return settings.model_copy(update={"alerts_rules_file": Path(rules)})


async def failure_spike(
    settings: Settings, bootstrap: str, store: ClickHouseStore, ingest_url: str, say: Callable[[str], None]
) -> SpikeOutcome:
    """``settings.alerts_rules_file`` must name the demo's rules (``with_demo_rules``)."""
    outcome = SpikeOutcome()
    rules = settings.alerts_rules_file
    say(f"\nfailure spike: {SPIKE_BOUNCES} bounces at {SPIKE_DOMAIN} (alert rules: {rules})")
    async with (
        alerts_runner(settings, bootstrap, store) as runner,
        httpx.AsyncClient(base_url=ingest_url, timeout=30) as client,
    ):
        await runner.restore()
        await _post(client, spike_batches(0, SPIKE_BOUNCES, "bounce"))
        outcome.fired = await _until(runner, "firing")
        if outcome.fired is None:
            say("  the alert did not fire in time")
            return outcome
        say(f"  alert FIRING   {_describe(outcome.fired)}")
        say(f"  recovery: {RECOVERY_DELIVERIES} deliveries at {SPIKE_DOMAIN}")
        await _post(client, spike_batches(SPIKE_BOUNCES, RECOVERY_DELIVERIES, "delivered"))
        outcome.resolved = await _until(runner, "resolved")
        if outcome.resolved is None:
            say("  the alert did not resolve in time")
            return outcome
        say(f"  alert RESOLVED {_describe(outcome.resolved)}")
        say(f"  both recorded in {store.database}.alerts and on topic {settings.alerts_topic}")
    return outcome


async def spam_spike(
    settings: Settings, bootstrap: str, store: ClickHouseStore, ingest_url: str, say: Callable[[str], None]
) -> SpikeOutcome:
    """Spam complaints at one mailbox provider fire its spam-rate alert; more deliveries resolve it.
    ``settings.alerts_rules_file`` must name the demo's rules (``with_demo_rules``)."""
    outcome = SpikeOutcome()
    say(
        f"\nspam spike: {SPAM_REPORTS} spam reports among {SPAM_DELIVERIES} deliveries at {SPAM_DOMAIN} "
        f"(mailbox provider {SPAM_PROVIDER})"
    )
    async with (
        alerts_runner(settings, bootstrap, store) as runner,
        httpx.AsyncClient(base_url=ingest_url, timeout=30) as client,
    ):
        await runner.restore()
        await _post(client, spam_batches(0, SPAM_DELIVERIES, SPAM_REPORTS))
        outcome.fired = await _until(runner, "firing", SPAM_PROVIDER)
        if outcome.fired is None:
            say("  the alert did not fire in time")
            return outcome
        say(f"  alert FIRING   {_describe(outcome.fired)}")
        say(f"  recovery: {SPAM_RECOVERY} deliveries at {SPAM_DOMAIN} without a report")
        await _post(client, spam_batches(SPAM_DELIVERIES, SPAM_RECOVERY, 0))
        outcome.resolved = await _until(runner, "resolved", SPAM_PROVIDER)
        if outcome.resolved is None:
            say("  the alert did not resolve in time")
            return outcome
        say(f"  alert RESOLVED {_describe(outcome.resolved)}")
    return outcome
