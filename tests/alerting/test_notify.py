"""Notifiers against real endpoints: a local HTTP receiver, the Tansu broker, the alerts table on chDB."""

from __future__ import annotations

import asyncio
import random
import re
from datetime import timedelta

import httpx
import orjson
import pytest
from pydantic import ValidationError

from adapters.clickhouse import ClickHouseStore
from adapters.publisher import create_producer
from adapters.retry import Backoff
from alerting.notify import AlertHistory, KafkaNotifier, WebhookNotifier, slack_message
from alerting.state_machine import Notification, Phase
from mailpulse.broker import free_port
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from schemas.alert_rules import AlertRule
from tests.alerting.notifications import AT, FIRING, sent
from tests.integration.alerting.receiver import webhook_receiver
from tests.integration.pipeline import read_topic


def test_slack_message_carries_every_field() -> None:
    message = slack_message(FIRING)
    assert message["text"] == (
        "[FIRING] fail: failure_rate 42.00% (threshold 20.00%) for sender_domain=shop.example over 300s, "
        "120 outcomes: failure_rate above 0.2 for 60s"
    )
    [attachment] = message["attachments"]
    assert attachment["color"] == "danger"
    assert {f["title"]: f["value"] for f in attachment["fields"]} == {
        "rule": "fail", "state": "firing", "key": "sender_domain=shop.example", "value": "42.00%",
        "threshold": "20.00%", "volume": "120",
    }  # fmt: skip
    assert message["alert"]["at"] == "2026-11-23T12:05:00.123000Z"
    assert message["alert"]["value"] == 0.42 and message["alert"]["state"] == "firing"


def test_slack_text_escapes_keys_so_they_cannot_mention_or_link() -> None:
    key = "<!channel> & <https://evil.example|click>"
    message = slack_message(Notification(**{**FIRING.__dict__, "key": key, "rule": "r<1>"}))
    shown = "sender_domain=&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
    assert shown in message["text"] and "r&lt;1&gt;:" in message["text"]
    [attachment] = message["attachments"]
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields["key"] == shown and fields["rule"] == "r&lt;1&gt;"
    for text in (message["text"], attachment["fallback"], *fields.values()):
        assert "<" not in text and ">" not in text
    assert message["alert"]["key"] == key, "machines get the key as it is"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://hooks.example/x", "http(s)"),
        ("https:///services/T0/B0/secret", "no host"),
        ("http://hooks.example:99999/secret", "does not parse"),
        ("http://[::1/secret", "does not parse"),
        ("https://hooks.example/services/a secret", "whitespace"),
    ],
)
def test_a_bad_webhook_url_is_refused_at_start_without_showing_it(url: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)) as caught:
        Settings(alerts_webhook_url=url)
    assert "secret" not in str(caught.value)
    with pytest.raises(ValueError, match=re.escape(problem)) as refused:
        WebhookNotifier(httpx.AsyncClient(), url, Backoff())
    assert "secret" not in str(refused.value)


async def deliver(statuses: list[int], attempts: int = 4) -> tuple[bool, int, int, list[float]]:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:  # records the backoff instead of waiting it out
        delays.append(seconds)

    async with webhook_receiver(statuses) as receiver, httpx.AsyncClient(timeout=5) as client:
        notifier = WebhookNotifier(
            client, receiver.url, Backoff(0.5, 30.0, attempts), sleep, random.Random(1)
        )
        ok = await notifier.send(FIRING)
        return ok, len(receiver.received), len(receiver.accepted), delays


def test_webhook_retries_5xx_and_429_then_delivers_once() -> None:
    before = (sent("webhook", "sent"), sent("webhook", "retried"))
    ok, received, accepted, delays = asyncio.run(deliver([503, 429, 500]))
    assert (ok, received, accepted) == (True, 4, 1)
    assert len(delays) == 3 and all(1.0 <= d <= 1.5 for d in delays)  # Retry-After: 1 is a floor
    assert (sent("webhook", "sent"), sent("webhook", "retried")) == (before[0] + 1, before[1] + 3)


def test_webhook_gives_up_after_the_attempts_and_on_4xx_without_raising() -> None:
    failed = sent("webhook", "failed")
    assert asyncio.run(deliver([500] * 10, attempts=3))[:3] == (False, 3, 0)
    assert asyncio.run(deliver([400, 400]))[:3] == (False, 1, 0)  # a client error is not retried
    assert sent("webhook", "failed") == failed + 2


def test_unreachable_webhook_is_counted_not_raised() -> None:
    async def scenario() -> bool:
        async with httpx.AsyncClient(timeout=2) as client:
            url = f"http://127.0.0.1:{free_port()}/nobody"
            notifier = WebhookNotifier(client, url, Backoff(0.01, 0.02, 2), _nap)
            return await notifier.send(FIRING)

    failed = sent("webhook", "failed")
    assert asyncio.run(scenario()) is False
    assert sent("webhook", "failed") == failed + 1


async def _nap(seconds: float) -> None:
    await asyncio.sleep(0)


@pytest.mark.kafka
def test_kafka_notifier_publishes_keyed_json_and_survives_a_stopped_producer(settings: Settings) -> None:
    bootstrap = settings.kafka_bootstrap
    assert bootstrap is not None

    async def scenario() -> tuple[bool, bool]:
        await ensure_topics(bootstrap, [settings.alerts_topic], 1)
        producer = create_producer(bootstrap, False)
        await producer.start()
        notifier = KafkaNotifier(producer, settings.alerts_topic)
        ok = await notifier.send(FIRING)
        await producer.stop()
        return ok, await notifier.send(FIRING)  # the producer is gone: logged and counted

    failed = sent("kafka", "failed")
    assert asyncio.run(scenario()) == (True, False)
    assert sent("kafka", "failed") == failed + 1
    [record] = asyncio.run(read_topic(bootstrap, settings.alerts_topic, 1))
    assert record.key == b"fail|shop.example"
    assert orjson.loads(record.value) == slack_message(FIRING)["alert"]


@pytest.mark.clickhouse
def test_history_records_transitions_once_and_restores_open_alerts(store: ClickHouseStore) -> None:
    rule = AlertRule(name="fail", metric="failure_rate", threshold=0.2, by="sender_domain", cooldown_s=600)
    other = AlertRule(name="other", metric="bounce_rate", threshold=0.1)
    history = AlertHistory(store)
    resolved = Notification(**{**FIRING.__dict__, "key": "b.example", "state": "resolved", "value": None})
    fired_b = Notification(**{**FIRING.__dict__, "key": "b.example", "at": AT - timedelta(minutes=10)})
    history.record([FIRING, fired_b])
    history.record([resolved])
    history.record([resolved])  # a retried write adds nothing
    rows = store.query(
        f"SELECT rule, key, state, value, volume FROM {store.database}.alerts FINAL ORDER BY at, key"
    )
    assert rows == [
        ("fail", "b.example", "firing", 0.42, 120),
        ("fail", "b.example", "resolved", 0.0, 120),
        ("fail", "shop.example", "firing", 0.42, 120),
    ]
    states = history.open_states((rule, other))
    assert states["other"] == {}
    assert states["fail"]["shop.example"].phase is Phase.FIRING
    assert states["fail"]["shop.example"].since == AT
    assert states["fail"]["b.example"].phase is Phase.OK
    assert states["fail"]["b.example"].quiet_until == AT + timedelta(seconds=600)
