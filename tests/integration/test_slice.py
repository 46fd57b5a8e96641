"""The end-to-end slice on real components: webhook -> Tansu -> processor -> chDB."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from adapters.clickhouse import ClickHouseStore
from adapters.kafka import RECORD_OVERHEAD
from mailpulse.settings import Settings
from tests.integration.pipeline import read_topic, running_pipeline, wait_for_records
from tests.webhook_events import XID, at, cloud_event, one_message_batch, sendgrid_event

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_sendgrid_batch_reverse_order_with_duplicates(settings: Settings, store: ClickHouseStore) -> None:
    loaded_before = REGISTRY.get_sample_value("mailpulse_processor_loaded_records_total") or 0.0

    async def scenario() -> dict[str, Any]:
        async with running_pipeline(settings, store) as (client, proc):
            first = await client.post("/webhooks/sendgrid/events", json=one_message_batch())
            retry = await client.post("/webhooks/sendgrid/events", json=one_message_batch())  # webhook retry
            assert first.status_code == retry.status_code == 200
            assert first.json() == {"accepted": 8, "rejected": 0, "errors": []}
            await wait_for_records(proc, 16)
            exposed = (await client.get("/metrics/")).text
            return {"loaded": proc.stats.loaded, "metrics": exposed}

    outcome = asyncio.run(scenario())
    assert REGISTRY.get_sample_value("mailpulse_processor_loaded_records_total") == loaded_before + 16
    for name in ("records", "loaded_records", "dead_letters", "load_failures", "commit_failures"):
        assert f"mailpulse_processor_{name}_total" in outcome["metrics"]
    assert 'mailpulse_ingest_events_total{endpoint="sendgrid",outcome="accepted"}' in outcome["metrics"]
    # Every published event was acknowledged: the producer's queue is empty again.
    assert "\nmailpulse_ingest_unacknowledged_events 0.0\n" in outcome["metrics"]
    db = store.database
    rows = store.client.query(f"SELECT * FROM {db}.messages").named_results()
    [state] = list(rows)
    assert state["message_id"] == f"{XID}:ana@example.com"
    assert state["status"] == "OPENED"
    assert state["provider"] == "sendgrid"
    assert state["recipient_domain"] == "example.com"
    assert state["queued_at"] == at(0).replace(tzinfo=None)
    assert state["delivered_at"] == at(30).replace(tzinfo=None)
    assert state["opened_at"] == at(100).replace(tzinfo=None)
    assert state["sent_at"] is None and state["undelivered_at"] is None
    assert (state["open_count"], state["machine_open_count"], state["click_count"]) == (2, 1, 1)
    assert (state["deferred_count"], state["event_count"]) == (1, 6)
    events = store.query(f"SELECT raw_type, status, occurred_at FROM {db}.events ORDER BY occurred_at")
    assert [(r, s) for r, s, _ in events] == [
        ("processed", "QUEUED"),
        ("deferred", ""),
        ("delivered", "DELIVERED"),
        ("open", "OPENED"),
        ("open", "OPENED"),
        ("click", ""),
    ]
    # Every record went to ClickHouse, which merged the copies.
    assert outcome["loaded"] == 16


def test_twilio_bounce_after_delivery_out_of_order(settings: Settings, store: ClickHouseStore) -> None:
    statuses = ["QUEUED", "SENT", "DELIVERED", "UNDELIVERED"]
    events = [cloud_event(s, 1500 * i + 7, i) for i, s in enumerate(statuses)]
    deliveries = [events[3], events[1], events[3], events[2], events[0], events[1]]

    async def scenario() -> None:
        async with running_pipeline(settings, store) as (client, proc):
            for one in deliveries:  # one POST per event, as Event Streams may deliver
                response = await client.post("/webhooks/twilio/events", json=[one])
                assert response.status_code == 200, response.text
            await wait_for_records(proc, len(deliveries))

    asyncio.run(scenario())
    [state] = list(store.client.query(f"SELECT * FROM {store.database}.messages").named_results())
    assert state["status"] == "UNDELIVERED"  # the bounce after delivery is the final truth
    assert state["delivered_at"] == (at(0) + timedelta(milliseconds=3007)).replace(tzinfo=None)
    assert state["undelivered_at"] == (at(0) + timedelta(milliseconds=4507)).replace(tzinfo=None)
    assert (state["sender_domain"], state["operation_id"]) == ("shop.example", "comms_operation_01")
    assert state["tags"] == {"campaign": "spring-2026"}
    assert store.query(f"SELECT count() FROM {store.database}.events") == [(4,)]


def test_acknowledged_events_are_in_kafka(settings: Settings, store: ClickHouseStore) -> None:
    """A 200 means Kafka already holds every event of the request, keyed by message id."""
    batch = one_message_batch()

    async def scenario() -> list[Any]:
        async with running_pipeline(settings, store) as (client, _):
            assert (await client.post("/webhooks/sendgrid/events", json=batch)).status_code == 200
        assert settings.kafka_bootstrap is not None
        return await read_topic(settings.kafka_bootstrap, settings.status_topic, len(batch))

    records = asyncio.run(scenario())
    assert len(records) == len(batch)
    assert {r.key for r in records} == {f"{XID}:ana@example.com".encode()}
    assert sorted(orjson.loads(r.value)["event_id"] for r in records) == sorted(
        e["sg_event_id"] for e in batch
    )


def test_batch_policy_and_clear_errors(settings: Settings, store: ClickHouseStore) -> None:
    good = sendgrid_event("delivered", 30, 3)
    bad = {"event": "delivered", "timestamp": "yesterday"}

    async def scenario() -> None:
        async with running_pipeline(settings, store) as (client, proc):
            mixed = await client.post("/webhooks/sendgrid/events", json=[bad, good])
            assert mixed.status_code == 200
            body = mixed.json()
            assert (body["accepted"], body["rejected"]) == (1, 1)
            assert {(e["index"], e["field"]) for e in body["errors"]} == {
                (0, "email"),
                (0, "timestamp"),
                (0, "sg_message_id"),
            }
            all_bad = await client.post("/webhooks/twilio/events", json=[{"specversion": "1.0"}, 7])
            assert all_bad.status_code == 422
            fields = {(e["index"], e["field"]) for e in all_bad.json()["errors"]}
            assert {(0, "id"), (0, "source"), (0, "type"), (0, "data"), (1, "(event)")} <= fields
            not_json = await client.post(
                "/webhooks/sendgrid/events", content=b"[{", headers={"content-type": "application/json"}
            )
            assert not_json.status_code == 400
            assert (await client.post("/webhooks/sendgrid/events", json={"a": 1})).status_code == 400
            assert (await client.post("/webhooks/sendgrid/events", content=b"[]")).status_code == 415
            huge = b"[" + b" " * settings.max_body_bytes + b"]"
            too_big = await client.post(
                "/webhooks/sendgrid/events", content=huge, headers={"content-type": "application/json"}
            )
            assert too_big.status_code == 413
            await wait_for_records(proc, 1)
        assert settings.kafka_bootstrap is not None
        dead = await read_topic(settings.kafka_bootstrap, settings.deadletter_topic, 3)
        assert sorted(orjson.loads(r.value)["index"] for r in dead) == [0, 0, 1]

    asyncio.run(scenario())
    assert store.query(f"SELECT status FROM {store.database}.messages") == [("DELIVERED",)]


def test_replay_from_scratch_changes_nothing(settings: Settings, store: ClickHouseStore) -> None:
    """A new consumer group re-reads the whole topic: ClickHouse merges each event once, nothing doubles."""
    db = store.database

    async def process_once(group: str) -> None:
        async with running_pipeline(settings.model_copy(update={"consumer_group": group}), store) as (
            client,
            proc,
        ):
            if group == "first":
                assert (await client.post("/webhooks/sendgrid/events", json=one_message_batch())).is_success
            await wait_for_records(proc, 8)

    asyncio.run(process_once("first"))
    before = store.query(f"SELECT * FROM {db}.messages ORDER BY message_id")
    asyncio.run(process_once("second"))
    assert store.query(f"SELECT * FROM {db}.messages ORDER BY message_id") == before
    assert store.query(f"SELECT count() FROM {db}.events") == [(6,)]


def dead_letter_of(settings: Settings, store: ClickHouseStore, key: bytes, value: bytes) -> Any:
    """The dead letter of a foreign record on the status topic, once a good event after it was handled
    too (the bad record blocks nothing)."""

    async def scenario() -> list[Any]:
        assert settings.kafka_bootstrap is not None
        async with running_pipeline(settings, store) as (client, proc):
            producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
            await producer.start()
            await producer.send_and_wait(settings.status_topic, key=key, value=value)
            await producer.stop()
            assert (
                await client.post("/webhooks/sendgrid/events", json=[sendgrid_event("processed", 0, 1)])
            ).is_success
            await wait_for_records(proc, 2)
            assert proc.stats.dead_letters == 1
        return await read_topic(settings.kafka_bootstrap, settings.deadletter_topic, 1)

    [dead] = asyncio.run(scenario())
    assert store.query(f"SELECT status FROM {store.database}.messages") == [("QUEUED",)]
    return dead


def test_undecodable_record_goes_to_dead_letters_without_blocking(
    settings: Settings, store: ClickHouseStore
) -> None:
    dead = dead_letter_of(settings, store, f"{XID}:ana@example.com".encode(), b"not an envelope")
    letter = orjson.loads(dead.value)
    assert (letter["stage"], letter["value"]) == ("processor", "not an envelope")
    assert letter["offset"] >= 0 and letter["reason"]  # ClickHouse's


def test_a_huge_undecodable_record_is_dead_lettered_cut_to_fit(
    settings: Settings, store: ClickHouseStore
) -> None:
    """400 kB of control bytes, foreign to mailpulse, on the status topic: written out in JSON they take
    six times that, over the producer's 1 MB max_request_size. The dead letter keeps the start of the
    value and its size, and the processor goes on (a dead letter that cannot be sent stopped it on
    that record at every restart)."""
    poison = b"\x01" * 400_000
    dead = dead_letter_of(settings, store, b"poison", poison)
    assert len(dead.value) <= 1024 * 1024 - RECORD_OVERHEAD - len(b"poison")  # the default max_request_size
    letter = orjson.loads(dead.value)
    assert letter["stage"] == "processor" and letter["reason"]
    assert letter["value_bytes"] == len(poison) and letter["value_cut"] is True
    assert 0 < len(letter["value"]) < len(poison) and set(letter["value"]) == {"\x01"}


def test_transitions_view_puts_reverse_arrivals_in_canonical_order(
    settings: Settings, store: ClickHouseStore
) -> None:
    """Events posted newest first: the transitions view derives each one's previous and current status
    from the stored events in event-time order."""

    async def scenario() -> None:
        async with running_pipeline(settings, store) as (client, proc):
            assert (await client.post("/webhooks/sendgrid/events", json=one_message_batch())).is_success
            await wait_for_records(proc, 8)

    asyncio.run(scenario())
    expected = [
        ("QUEUED", "", "QUEUED"),
        ("DELIVERED", "QUEUED", "DELIVERED"),
        ("OPENED", "DELIVERED", "OPENED"),
        ("OPENED", "OPENED", "OPENED"),
    ]
    rows = store.query(
        f"SELECT status, previous_status, current_status FROM {store.database}.transitions "
        "ORDER BY occurred_at, dedupe_key"
    )
    assert rows == expected
