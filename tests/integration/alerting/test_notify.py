"""Alert notifications on the real Kafka broker and alert history in real chDB."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest

from adapters.clickhouse import ClickHouseStore
from adapters.publisher import create_producer
from alerting.notify import AlertHistory, KafkaNotifier, slack_message
from alerting.state_machine import Notification, Phase
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from schemas.alert_rules import AlertRule
from tests.alerting.notifications import AT, FIRING, sent
from tests.integration.pipeline import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


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
