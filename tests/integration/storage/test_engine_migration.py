"""Migration 11 on a database loaded the old way (real chDB): events and states written as the processor
wrote them before envelope v2, then migrated: ``messages`` is what it was (the state rebuilt from
email_events), new events loaded through the landing table merge with it, and a re-run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.clickhouse import ClickHouseStore
from schemas.event import CanonicalEvent, envelope_json
from schemas.sendgrid import parse_sendgrid_event
from schemas.twilio import parse_cloud_event
from simulator.traffic import SignalRates, generate
from storage.migrations import MIGRATIONS, SchemaOptions, migrations_table
from storage.tables import CLASSIFICATIONS, EVENT_COLUMNS, STATE_COLUMNS, STATUS_BITS
from tests.schemas.events import old_event_row
from tests.schemas.reference_state import fold

pytestmark = [pytest.mark.clickhouse]
RECEIVED = datetime(2026, 11, 23, tzinfo=UTC)


def _traffic(messages: int, seed: int) -> list[CanonicalEvent]:
    traffic = generate(messages, seed, duplicate_rate=0.3)
    events = [parse_sendgrid_event(raw, RECEIVED) for batch in traffic.sendgrid_batches for raw in batch]
    events += [parse_cloud_event(raw, RECEIVED) for batch in traffic.twilio_batches for raw in batch]
    return events


def _old_schema(store: ClickHouseStore, upto: int) -> None:
    """Migrations 1..upto applied and recorded, as a release before migration 11 left the database."""
    opts = SchemaOptions(store.database)
    store.client.command(f"DROP DATABASE IF EXISTS {store.database}")
    for statement in migrations_table(opts):
        store.client.command(statement)
    for migration in MIGRATIONS[:upto]:
        for statement in migration.statements(opts):
            store.client.command(statement)
        store.client.insert(
            f"{store.database}.schema_migrations",
            [[migration.version, migration.name, migration.checksum(opts), datetime.now(UTC)]],
            column_names=["version", "name", "checksum", "applied_at"],
        )


def _states(events: list[CanonicalEvent]) -> list[tuple[Any, ...]]:
    by_message: dict[str, list[CanonicalEvent]] = {}
    for event in events:
        by_message.setdefault(event.message_id, []).append(event)
    states = [fold(m, group) for m, group in by_message.items()]
    return [s.row_values() for s in states if s.concerns_email]


def _messages(store: ClickHouseStore) -> list[tuple[Any, ...]]:
    return store.query(
        f"SELECT {', '.join(STATE_COLUMNS)} FROM {store.database}.messages ORDER BY message_id"
    )


def test_migration_rebuilds_the_state_from_events_and_keeps_messages(store: ClickHouseStore) -> None:
    assert MIGRATIONS[10].name == "engine_merge"
    _old_schema(store, 10)
    events = _traffic(150, seed=5)
    # The old processor: every delivery (copies too) into email_events, then the merged states.
    rows = [old_event_row(e, 0, i) for i, e in enumerate(events)]
    store.insert("email_events", EVENT_COLUMNS, rows, "events|0")
    store.insert("email_events", EVENT_COLUMNS, rows[: len(rows) // 2], "events|replayed")
    store.insert("email_state", STATE_COLUMNS, _states(events), "state|0")
    before = _messages(store)
    assert len(before) > 100

    assert store.migrate()[0] == "0011_engine_merge"  # then any later ones
    [(query,)] = store.query(
        f"SELECT create_table_query FROM system.tables WHERE database = '{store.database}' "
        "AND name = 'messages'"
    )
    assert "email_state_agg" in query  # read from the engine's state, not the old table
    assert _messages(store) == before

    # A crash in the middle of migration 11 runs it again: the backfill twice changes nothing.
    for statement in MIGRATIONS[10].statements(SchemaOptions(store.database)):
        store.client.command(statement)
    assert _messages(store) == before

    # New events of existing messages, through the landing table, merge with the backfilled state.
    later = [
        e.model_copy(update={"occurred_at": e.occurred_at + timedelta(days=1), "event_id": e.event_id + "-l"})
        for e in events[::7]
    ]
    store.load([envelope_json(e) for e in later], "landing|0")
    expected = sorted(_states(events + later))
    got = _messages(store)
    assert [tuple(_ms(v) for v in row) for row in got] == [tuple(_ms(v) for v in row) for row in expected]


_EPOCH = datetime(1970, 1, 1)


def _ms(value: Any) -> Any:
    if isinstance(value, datetime):
        return int((value.replace(tzinfo=None) - _EPOCH).total_seconds() * 1000)
    return dict(value) if isinstance(value, dict) else value


def _figures(store: ClickHouseStore) -> dict[str, Any]:
    from analytics.queries import Window
    from analytics.service import AnalyticsService

    window = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
    summary = AnalyticsService(store.client, store.database).summary(window)
    return {k: summary[k] for k in ("messages", "counts", "volumes")}


def test_migration_13_adds_blocks_and_classifications_to_existing_data(store: ClickHouseStore) -> None:
    assert MIGRATIONS[12].name == "signals"
    _old_schema(store, 12)
    traffic = generate(300, 9, duplicate_rate=0.3, twilio_share=0.2, signals=SignalRates(blocked=0.7))
    events = [parse_sendgrid_event(raw, RECEIVED) for batch in traffic.sendgrid_batches for raw in batch]
    store.load([envelope_json(e) for e in events], "before-13")
    before = _figures(store)
    assert before["counts"]["bounced"] > 0 and "BLOCKED" not in before["volumes"]

    assert store.migrate() == ["0013_signals"]
    after = _figures(store)
    blocked = {e.message_id for e in events if e.raw_type == "blocked"}
    assert blocked and after["volumes"]["BLOCKED"] == len(blocked)
    assert 0 < after["counts"]["blocked"] <= len(blocked)
    # Everything else as it was: the backfill only adds bits and keys.
    unchanged = {k: v for k, v in after["counts"].items() if k not in ("blocked",)}
    assert unchanged == {k: v for k, v in before["counts"].items() if k not in ("blocked",)}
    assert {k: v for k, v in after["volumes"].items() if k != "BLOCKED"} == before["volumes"]
    classes = sum(1 << STATUS_BITS.index(f"BOUNCE:{c}") for c in CLASSIFICATIONS)
    classified = store.query(
        f"SELECT uniqExact(message_id) FROM {store.database}.message_minute WHERE bitAnd(statuses, {classes})"
    )
    assert classified == [(len({e.message_id for e in events if e.bounce_classification}),)]

    # A re-run (a crash in the middle) changes no figure; new events go through one view, the new one.
    for statement in MIGRATIONS[12].statements(SchemaOptions(store.database)):
        store.client.command(statement)
    assert _figures(store) == after
    views = store.query(
        f"SELECT name FROM system.tables WHERE database = '{store.database}' "
        "AND name LIKE 'message_minute%mv'"
    )
    assert views == [("message_minute_signals_mv",)]
    store.load([envelope_json(e) for e in events], "after-13")  # the same events again: nothing changes
    assert _figures(store) == after
