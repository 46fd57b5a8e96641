"""No alert lost: the outbox (chDB) keeps what a channel did not take, later evaluations send it again until
it is delivered or expires with a record, a restart resumes from the table, and a slow webhook holds
neither the Kafka channel nor the evaluation beyond its deadline. Real receiver on 127.0.0.1, real Tansu."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from adapters.clickhouse import ClickHouseStore
from adapters.publisher import create_producer
from adapters.retry import Backoff
from alerting.evaluate import Evaluator
from alerting.notify import AlertHistory, KafkaNotifier, Notifier, WebhookNotifier, slack_message
from alerting.outbox import Outbox
from alerting.runner import AlertRunner
from alerting.state_machine import Notification
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from tests.alerting.notifications import AT, FIRING, sent
from tests.integration.alerting.receiver import HOLD, webhook_receiver
from tests.integration.pipeline import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
RESOLVED = Notification(
    **{**FIRING.__dict__, "at": AT + timedelta(minutes=5), "state": "resolved", "value": 0.1, "reason": "ok"}
)
TICK = timedelta(seconds=30)


async def _nap(seconds: float) -> None:
    await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def runner(
    settings: Settings, store: ClickHouseStore, url: str, deadline_s: float = 30.0, expiry_s: float = 3600.0
) -> AsyncIterator[AlertRunner]:
    """A runner without rules (its evaluations find no transitions) whose webhook tries once a tick."""
    assert settings.kafka_bootstrap is not None
    await ensure_topics(settings.kafka_bootstrap, [settings.alerts_topic], 1)
    producer = create_producer(settings.kafka_bootstrap, False)
    await producer.start()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            notifiers: list[Notifier] = [  # the webhook first: it must not delay Kafka
                WebhookNotifier(client, url, Backoff(0.01, 0.02, 1), _nap),
                KafkaNotifier(producer, settings.alerts_topic),
            ]
            evaluator = Evaluator(store.query, store.database)
            yield AlertRunner(
                (), evaluator, AlertHistory(store), notifiers, 30.0, outbox=Outbox(store),
                deadline_s=deadline_s, expiry_s=expiry_s,
            )  # fmt: skip
    finally:
        await producer.stop()


def steps(store: ClickHouseStore, channel: str) -> list[tuple[str, int, str]]:
    rows = store.query(
        f"SELECT state, attempt, outcome FROM {store.database}.alert_outbox FINAL"
        " WHERE channel = {c:String} ORDER BY at, attempt, outcome = 'queued' DESC",
        {"c": channel},
    )
    return [(str(s), int(a), str(o)) for s, a, o in rows]


async def kafka_alerts(settings: Settings, expected: int) -> list[dict[str, Any]]:
    assert settings.kafka_bootstrap is not None
    records = await read_topic(settings.kafka_bootstrap, settings.alerts_topic, expected, timeout_s=10)
    return [orjson.loads(r.value) for r in records]


def test_a_failing_webhook_gets_its_alerts_at_later_ticks_in_order_across_a_restart(
    settings: Settings, store: ClickHouseStore
) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], int, list[dict[str, Any]]]:
        async with webhook_receiver([500, 503, 500]) as receiver:
            async with runner(settings, store, receiver.url) as first:
                done = await first.deliver([FIRING, RESOLVED], AT + timedelta(minutes=5))
                # The firing failed, so its resolve was held back: it must not arrive first.
                webhook = [
                    (s.delivery.note.state, s.outcome) for s in done if s.delivery.channel == "webhook"
                ]
                assert webhook == [("firing", "failed")]
                await first.tick(AT + timedelta(minutes=5) + TICK)
            assert len(receiver.received) == 2 and receiver.accepted == []
            async with runner(settings, store, receiver.url) as second:  # a restart: only the table is left
                now = AT + timedelta(minutes=5) + 2 * TICK
                for _ in range(3):
                    await second.tick(now)
                    now += TICK
                assert await asyncio.to_thread(Outbox(store).pending) == []
            return receiver.accepted, len(receiver.received), await kafka_alerts(settings, 2)

    accepted, received, on_kafka = asyncio.run(scenario())
    assert accepted == [slack_message(FIRING), slack_message(RESOLVED)], "both, once, in order"
    assert received == 5  # three failures, then one delivery each
    assert on_kafka == [slack_message(FIRING)["alert"], slack_message(RESOLVED)["alert"]]
    assert steps(store, "webhook") == [
        ("firing", 0, "queued"), ("firing", 1, "failed"), ("firing", 2, "failed"), ("firing", 3, "failed"),
        ("firing", 4, "delivered"), ("resolved", 0, "queued"), ("resolved", 1, "delivered"),
    ]  # fmt: skip
    assert steps(store, "kafka") == [
        ("firing", 0, "queued"), ("firing", 1, "delivered"),
        ("resolved", 0, "queued"), ("resolved", 1, "delivered"),
    ]  # fmt: skip


def test_an_alert_that_never_gets_through_expires_with_a_record(
    settings: Settings, store: ClickHouseStore, caplog: pytest.LogCaptureFixture
) -> None:
    expired_before = sent("webhook", "expired")

    async def scenario() -> tuple[int, int]:
        async with (
            webhook_receiver([500] * 50) as receiver,
            runner(settings, store, receiver.url, expiry_s=120) as r,
        ):
            await r.deliver([FIRING], AT)
            for seconds in (60, 120):  # still within the expiry: tried again
                await r.tick(AT + timedelta(seconds=seconds))
            tried = len(receiver.received)
            await r.tick(AT + timedelta(seconds=150))  # past it: given up, not sent
            await r.tick(AT + timedelta(seconds=180))
            return tried, len(receiver.received)

    tried, received = asyncio.run(scenario())
    assert tried == received == 3
    assert steps(store, "webhook") == [
        ("firing", 0, "queued"), ("firing", 1, "failed"), ("firing", 2, "failed"), ("firing", 3, "failed"),
        ("firing", 3, "expired"),
    ]  # fmt: skip
    [(error,)] = store.query(f"SELECT error FROM {store.database}.alert_outbox WHERE outcome = 'expired'")
    assert "3 attempts" in error
    assert sent("webhook", "expired") == expired_before + 1
    assert "given up after 3 attempts" in caplog.text
    assert steps(store, "kafka")[-1] == ("firing", 1, "delivered")


def test_a_slow_webhook_holds_neither_kafka_nor_the_evaluation(
    settings: Settings, store: ClickHouseStore
) -> None:
    async def scenario() -> None:
        async with (
            webhook_receiver([HOLD]) as receiver,
            runner(settings, store, receiver.url, deadline_s=1.0) as r,
        ):
            # Bounded wait: the deadline ends the webhook's send, the receiver still holds the request.
            done = await asyncio.wait_for(r.deliver([FIRING], AT), 60)
            assert receiver.held == 1 and receiver.accepted == [], "the webhook has not answered"
            outcomes = {s.delivery.channel: (s.outcome, s.error) for s in done}
            assert outcomes["kafka"] == ("delivered", "")
            assert outcomes["webhook"][0] == "failed" and "deadline" in outcomes["webhook"][1]
            assert await kafka_alerts(settings, 1) == [slack_message(FIRING)["alert"]]
            receiver.release.set()
            await asyncio.wait_for(r.tick(AT + TICK), 60)
            assert receiver.accepted == [slack_message(FIRING)]

    asyncio.run(scenario())
    assert steps(store, "webhook")[-1] == ("firing", 2, "delivered")
    assert steps(store, "kafka") == [("firing", 0, "queued"), ("firing", 1, "delivered")]
