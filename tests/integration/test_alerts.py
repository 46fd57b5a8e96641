"""A failure spike through the real pipeline (ingest -> Tansu -> StatusProcessor -> chDB), then
`mailpulse alerts`' runner swept over the windows with an injected clock: exactly one firing and one
resolve reach a real webhook receiver, the alerts topic and the alerts table, a restart in the middle
sends nothing twice, and a spike below min_volume fires nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from adapters.clickhouse import ClickHouseStore
from alerting.runner import AlertRunner
from mailpulse.health import alerts_health_app
from mailpulse.runtime import alerts_runner
from mailpulse.settings import Settings
from tests.integration.alerting.receiver import webhook_receiver
from tests.integration.pipeline import read_topic, running_pipeline, wait_for_records

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
MINUTES = 30
SPIKE = range(10, 14)  # minutes in which shop.example fails 6 of its 8 messages
RULES = """
[[rule]]
name = "domain-failures"
metric = "failure_rate"
threshold = 0.2
window_s = 300
by = "sender_domain"
min_volume = 20
for_s = 60
cooldown_s = 600

[[rule]]
name = "all-bounces"
metric = "bounce_rate"
threshold = 0.5
window_s = 300
min_volume = 20
"""


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def twilio(n: int, sender: str, statuses: list[str], start: datetime) -> list[dict[str, Any]]:
    """Status callbacks of one Email API email, one CloudEvent per status, 5 s apart."""
    out = []
    for i, status in enumerate(statuses):
        at = iso(start + timedelta(seconds=5 * i))
        data = {
            "id": f"comms_email_{n:06d}",
            "status": status,
            "updatedAt": at,
            "from": {"address": f"news@{sender}"},
            "to": [{"address": f"user{n}@mail.example"}],
        }
        out.append(
            {
                "specversion": "1.0",
                "type": f"com.twilio.comms-api.email.{status.lower()}",
                "source": f"/v1/Emails/comms_email_{n:06d}",
                "id": f"EZ{n:08d}{i:024d}",
                "time": at,
                "data": data,
            }
        )
    return out


def sendgrid(n: int, start: datetime) -> list[dict[str, Any]]:
    """A SendGrid message (no sender domain) processed, then delivered."""
    xid = f"SG{n:020d}"
    return [
        {
            "email": f"user{n}@other-mail.example",
            "timestamp": int((start + timedelta(seconds=5 * i)).timestamp()),
            "event": event,
            "sg_event_id": f"{xid}{i}",
            "sg_message_id": f"{xid}.filter-0",
        }
        for i, event in enumerate(["processed", "delivered"])
    ]


def traffic() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(Twilio events, SendGrid events): 30 minutes of mail from shop.example and other.example, a
    failure spike for shop.example, and 5 failed mails of tiny.example (100% failing, low volume)."""
    tw: list[dict[str, Any]] = []
    sg: list[dict[str, Any]] = []
    n = 0
    for minute in range(MINUTES):
        base = T0 + timedelta(minutes=minute)
        for i in range(8):
            start, n = base + timedelta(seconds=4 * i), n + 1
            outcome = "DELIVERED"
            if minute in SPIKE and i < 6:
                outcome = "UNDELIVERED" if i % 2 else "FAILED"
            # FAILED ends a message that never went out (after SENT it would lose to SENT: pending).
            lifecycle = ["QUEUED", outcome] if outcome == "FAILED" else ["QUEUED", "SENT", outcome]
            tw += twilio(n, "shop.example", lifecycle, start)
            n += 1
            other = "UNDELIVERED" if i == 0 and minute % 4 == 0 else "DELIVERED"  # 1 of 32: normal noise
            tw += twilio(n, "other.example", ["QUEUED", "SENT", other], start)
        for i in range(4):
            n += 1
            sg += sendgrid(n, base + timedelta(seconds=4 * i))
    for i in range(5):
        n += 1
        tw += twilio(n, "tiny.example", ["QUEUED", "FAILED"], T0 + timedelta(minutes=15, seconds=i))
    return tw, sg


def batches(events: list[dict[str, Any]], size: int = 200) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def state_gauge(rule: str, key: str) -> float | None:
    return REGISTRY.get_sample_value("mailpulse_alert_state", {"rule": rule, "key": key})


def test_failure_spike_fires_once_and_resolves_once(
    settings: Settings, store: ClickHouseStore, tmp_path: Path
) -> None:
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(RULES)
    tw, sg = traffic()
    bootstrap = settings.kafka_bootstrap
    assert bootstrap is not None
    now = [T0]
    seen: dict[str, Any] = {}

    async def sweep(runner: AlertRunner, until: datetime) -> None:
        while now[0] < until:
            now[0] += timedelta(seconds=30)
            await runner.tick()
            if now[0] == T0 + timedelta(minutes=14):  # firing: what operators see
                seen["gauge"] = state_gauge("domain-failures", "shop.example")
                transport = httpx.ASGITransport(app=alerts_health_app(runner))
                async with httpx.AsyncClient(transport=transport, base_url="http://alerts") as client:
                    seen["healthz"] = (await client.get("/healthz")).json()

    async def scenario() -> list[dict[str, Any]]:
        async with running_pipeline(settings, store) as (client, proc):
            for batch in batches(tw):
                assert (await client.post("/webhooks/twilio/events", json=batch)).status_code == 200
            for batch in batches(sg):
                assert (await client.post("/webhooks/sendgrid/events", json=batch)).status_code == 200
            await wait_for_records(proc, len(tw) + len(sg), timeout_s=120)
        async with webhook_receiver() as receiver:
            configured = settings.model_copy(
                update={"alerts_rules_file": rules_file, "alerts_webhook_url": SecretStr(receiver.url)}
            )
            async with alerts_runner(configured, bootstrap, store, clock=lambda: now[0]) as runner:
                await runner.restore()
                await sweep(runner, T0 + timedelta(minutes=15))
            # A restart while the alert fires: the new runner rebuilds it from the alerts table.
            async with alerts_runner(configured, bootstrap, store, clock=lambda: now[0]) as runner:
                await runner.restore()
                await sweep(runner, T0 + timedelta(minutes=MINUTES + 5))
            return receiver.accepted

    received = asyncio.run(scenario())

    # Exactly one firing and one resolve, for the spiking domain only, with the known figures.
    fired_at, resolved_at = T0 + timedelta(minutes=12, seconds=30), T0 + timedelta(minutes=17, seconds=30)
    expected = [
        ("firing", fired_at, 18 / 40, 40),  # minutes 8..12 hold 3 spike minutes: 18 of 40 failed
        ("resolved", resolved_at, 6 / 40, 40),  # minutes 13..17 hold one: back under 0.2
    ]
    assert [
        (m["alert"]["state"], m["alert"]["at"], m["alert"]["value"], m["alert"]["volume"]) for m in received
    ] == [(state, iso(at), value, volume) for state, at, value, volume in expected]
    assert {(m["alert"]["rule"], m["alert"]["key"]) for m in received} == {
        ("domain-failures", "shop.example")
    }
    assert received[0]["text"].startswith("[FIRING] domain-failures: failure_rate 45.00%")

    records = asyncio.run(read_topic(bootstrap, settings.alerts_topic, 2, timeout_s=5))
    assert [r.key for r in records] == [b"domain-failures|shop.example"] * 2
    assert [orjson.loads(r.value) for r in records] == [m["alert"] for m in received]

    rows = store.query(
        f"SELECT rule, key, state, at, value, threshold, volume, window_s FROM {store.database}.alerts"
        " ORDER BY at"
    )
    assert rows == [
        ("domain-failures", "shop.example", state, at.replace(tzinfo=None), value, 0.2, volume, 300)
        for state, at, value, volume in expected
    ]
    assert seen["gauge"] == 2.0
    assert seen["healthz"]["firing"] == [{"rule": "domain-failures", "key": "shop.example"}]
    assert state_gauge("domain-failures", "shop.example") is None  # cooled down: no longer tracked
    # The low-volume domain failed every mail, and the data says so; it never fired.
    tiny = store.query(
        f"SELECT uniqExactMerge(messages) FROM {store.database}.rollup_minute "
        "WHERE sender_domain = 'tiny.example' AND status = 'FAILED'"
    )
    assert tiny == [(5,)]
