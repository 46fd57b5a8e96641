"""Migrations on real chDB: recorded and applied once, a pre-migration database upgraded in place, the
rollup exact under physically duplicated rows, TTLs following the retention settings, cluster DDL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.clickhouse import ClickHouseStore
from schemas.event import CanonicalEvent
from schemas.sendgrid import parse_sendgrid_event
from schemas.twilio import parse_cloud_event
from simulator.traffic import generate
from storage.migrations import MIGRATIONS, Retention, SchemaOptions
from storage.tables import CLASSIFICATIONS, EVENT_COLUMNS, STATUS_BITS
from tests.schemas.events import old_event_row as event_row

pytestmark = [pytest.mark.clickhouse]
RECEIVED = datetime(2026, 11, 23, tzinfo=UTC)


def generated_events(messages: int, seed: int) -> list[CanonicalEvent]:
    """Every delivery of generated traffic, duplicates included, as canonical events."""
    traffic = generate(messages, seed, duplicate_rate=0.3)
    events = [parse_sendgrid_event(raw, RECEIVED) for batch in traffic.sendgrid_batches for raw in batch]
    events += [parse_cloud_event(raw, RECEIVED) for batch in traffic.twilio_batches for raw in batch]
    return events


def rollup_vs_events(store: ClickHouseStore) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Distinct messages per (minute, status, provider, domains) from the rollup and from `events`."""
    db = store.database
    rollup = store.query(
        f"SELECT minute, status, provider, sender_domain, recipient_domain, uniqExactMerge(messages) "
        f"FROM {db}.rollup_minute GROUP BY ALL ORDER BY ALL"
    )
    truth = store.query(
        f"SELECT toStartOfMinute(occurred_at), if(kind = 'status', status, upper(kind)), provider, "
        f"sender_domain, recipient_domain, uniqExact(message_id) FROM {db}.events GROUP BY ALL ORDER BY ALL"
    )
    return rollup, truth


def message_minute_vs_events(store: ClickHouseStore) -> tuple[dict[tuple[object, ...], int], ...]:
    """Status bits per (minute, message, provider, domains, tags) from message_minute, and the same
    computed here in Python from the deduplicated `events` view (a block sets BLOCKED besides
    UNDELIVERED; a bounce's classification sets its bit)."""
    db = store.database
    stored = store.query(
        f"SELECT minute, message_id, provider, sender_domain, recipient_domain, tags, groupBitOr(statuses) "
        f"FROM {db}.message_minute GROUP BY ALL"
    )
    truth: dict[tuple[object, ...], int] = {}
    query = (
        f"SELECT toStartOfMinute(occurred_at), message_id, provider, sender_domain, recipient_domain, tags, "
        f"kind, status, raw_type, bounce_classification FROM {db}.events"
    )
    for minute, message, provider, sender, recipient, tags, kind, status, raw, classification in store.query(
        query
    ):
        key = (
            minute,
            message,
            provider,
            sender,
            recipient,
            tuple(sorted(f"{k}={v}" for k, v in tags.items())),
        )
        names = [status if kind == "status" else kind.upper()]
        if raw == "blocked":
            names.append("BLOCKED")
        if classification is not None:
            names.append(f"BOUNCE:{classification if classification in CLASSIFICATIONS else 'Unclassified'}")
        for name in names:
            truth[key] = truth.get(key, 0) | 1 << STATUS_BITS.index(name)
    return {(*r[:5], tuple(r[5])): r[6] for r in stored}, truth


def test_migrations_are_recorded_and_applied_once(store: ClickHouseStore) -> None:
    assert store.applied_migrations().keys() == {m.version for m in MIGRATIONS}
    assert store.migrate() == []  # nothing pending the second time
    [(rows,)] = store.query(f"SELECT count() FROM {store.database}.schema_migrations")
    assert rows == len(MIGRATIONS)


def test_rollup_is_exact_with_duplicated_rows_and_tags(store: ClickHouseStore) -> None:
    events = generated_events(300, seed=7)
    rows = [event_row(e, 0, i) for i, e in enumerate(events)]
    # Every delivery inserted (duplicates too), then the whole load again as if replayed after a crash.
    store.insert("email_events", EVENT_COLUMNS, rows, "first")
    store.insert("email_events", EVENT_COLUMNS, rows, "replayed-with-another-token")
    rollup, truth = rollup_vs_events(store)
    assert rollup == truth and len(truth) > 50
    # Messages with several tags appear once per tag, yet merge to one per message.
    tagged = store.query(
        f"SELECT uniqExactMerge(messages) FROM {store.database}.rollup_minute WHERE status = 'DELIVERED'"
    )
    direct = store.query(
        f"SELECT uniqExact(message_id) FROM {store.database}.events WHERE status = 'DELIVERED'"
    )
    assert tagged == direct and direct[0][0] > 0
    bits, expected_bits = message_minute_vs_events(store)
    assert bits == expected_bits and len(expected_bits) > 100
    blocked = 1 << STATUS_BITS.index("BLOCKED")
    classes = sum(1 << STATUS_BITS.index(f"BOUNCE:{c}") for c in CLASSIFICATIONS)
    assert any(b & blocked for b in bits.values()), "blocks occur and set their bit"
    assert any(b & classes for b in bits.values()), "bounces set their classification's bit"


def test_a_database_from_before_migrations_is_upgraded_and_backfilled(store: ClickHouseStore) -> None:
    db = store.database
    rollups = ("rollup_minute", "message_minute")
    for table in ("rollup_minute_mv", "message_minute_signals_mv", *rollups, "schema_migrations"):
        store.client.command(f"DROP TABLE {db}.{table}")
    events = generated_events(200, seed=11)
    store.insert("email_events", EVENT_COLUMNS, [event_row(e, 0, i) for i, e in enumerate(events)], "before")
    assert store.migrate() == [f"{m.version:04d}_{m.name}" for m in MIGRATIONS]
    # Migration 11 rebuilt the message state from the events loaded before it.
    [(messages,)] = store.query(f"SELECT count() FROM {db}.messages")
    assert messages == len({e.message_id for e in events}) > 0
    rollup, truth = rollup_vs_events(store)
    assert rollup == truth and truth
    bits, expected_bits = message_minute_vs_events(store)
    assert bits == expected_bits and expected_bits
    assert any(b & 1 << STATUS_BITS.index("BLOCKED") for b in bits.values()), "blocks backfilled"
    tables = {str(name) for (name,) in store.query(f"SELECT name FROM system.tables WHERE database = '{db}'")}
    assert {"rollup_minute", "message_minute"} <= tables
    assert not tables & {"rollup_hour", "rollup_hour_tag", "rollup_5min"}  # superseded, dropped by 7


def test_ttl_follows_the_retention_settings(store: ClickHouseStore) -> None:
    db = store.database

    def engines() -> dict[str, str]:
        query = f"SELECT name, engine_full FROM system.tables WHERE database = '{db}' AND engine_full != ''"
        return {str(name): str(engine) for name, engine in store.query(query)}

    assert not any(" TTL " in engine for engine in engines().values())
    store.migrate(retention=Retention(events_days=30, rollup_days=400))
    after = engines()
    assert "TTL toDateTime(occurred_at) + toIntervalDay(30)" in after["email_events"]
    assert "TTL toDateTime(occurred_at) + toIntervalDay(30)" in after["email_transitions"]
    assert "TTL toDateTime(last_event_at) + toIntervalDay(30)" in after["email_state"]
    assert "TTL toDateTime(last_event_at) + toIntervalDay(30)" in after["email_state_agg"]
    assert "TTL minute + toIntervalDay(400)" in after["rollup_minute"]
    assert "TTL minute + toIntervalDay(400)" in after["message_minute"]
    store.migrate(retention=Retention(events_days=30, rollup_days=400))  # unchanged: no ALTER fails
    store.migrate()  # back to keep-forever
    assert not any(" TTL " in engine for engine in engines().values())


def test_cluster_ddl_replicates_every_table() -> None:
    opts = SchemaOptions("mp", cluster="main")
    statements = [s for m in MIGRATIONS for s in m.statements(opts)]
    ddl = [s for s in statements if s.startswith(("CREATE", "ALTER", "DROP"))]
    assert ddl and all(" ON CLUSTER main" in s for s in ddl)
    # The landing table stores nothing (Null engine): each replica's views fill its replicated tables.
    landing = [s for s in ddl if s.startswith("CREATE TABLE") and "ENGINE = Null" in s]
    assert [s.split("mp.", 1)[1].split(" ", 1)[0] for s in landing] == ["email_events_in"]
    tables = [s for s in ddl if s.startswith("CREATE TABLE") and s not in landing]
    assert len(tables) >= 11 and any("mp.email_state_agg " in s for s in tables)
    for statement in tables:
        table = statement.split("mp.", 1)[1].split(" ", 1)[0]
        assert "ENGINE = Replicated" in statement
        assert f"'/clickhouse/tables/{{shard}}/mp/{table}', '{{replica}}'" in statement
        assert "non_replicated_deduplication_window" not in statement
