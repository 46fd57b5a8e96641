"""ClickHouse merges the state itself: the same set of events loaded through ``ClickHouseStore.load``
in random batches, orders, with retried batches (same token) and copies of events in other batches,
gives the same ``messages`` and ``transitions`` rows as loading each event once, and ``messages``
equals the pure reference fold (tests/schemas/reference_state.py). Real chDB, no mocks."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clickhouse import ClickHouseStore
from schemas.event import CanonicalEvent, Provider, Source, envelope_json
from schemas.status import PRECEDENCE, EmailStatus, EventKind
from storage.tables import STATE_COLUMNS
from tests.schemas.events import event_sets, sample_events, semantic_copy
from tests.schemas.reference_state import NON_EMAIL_KINDS, fold

pytestmark = [pytest.mark.clickhouse]

_runs = itertools.count()
_EPOCH = datetime(1970, 1, 1)
# What a transition says whichever copy of its event ClickHouse kept (event_id, source, received_at
# and so ``late`` belong to the copy).
_TRANSITION = "message_id, occurred_at, dedupe_key, status, previous_status, current_status"


def _database(clickhouse: Client) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore(clickhouse, f"t_engine_{uuid.uuid4().hex[:8]}")
    store.migrate()
    yield store
    clickhouse.command(f"DROP DATABASE IF EXISTS {store.database}")


@pytest.fixture(scope="module")
def engine(clickhouse: Client) -> Iterator[ClickHouseStore]:
    yield from _database(clickhouse)


@pytest.fixture(scope="module")
def engine_once(clickhouse: Client) -> Iterator[ClickHouseStore]:
    """A second database: the same events loaded once each, for comparison."""
    yield from _database(clickhouse)


def _renamed(events: list[CanonicalEvent], prefix: str) -> list[CanonicalEvent]:
    """The events under message ids of their own (one database serves every example)."""
    return [e.model_copy(update={"message_id": prefix + e.message_id}) for e in events]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return int((value.replace(tzinfo=None) - _EPOCH).total_seconds() * 1000)
    return dict(value) if isinstance(value, dict) else value


def messages(store: ClickHouseStore, prefix: str) -> dict[str, tuple[Any, ...]]:
    rows = store.query(
        f"SELECT {', '.join(STATE_COLUMNS)} FROM {store.database}.messages "
        "WHERE startsWith(message_id, {p:String})",
        {"p": prefix},
    )
    return {row[0][len(prefix) :]: tuple(_plain(v) for v in row[1:]) for row in rows}


def transitions(store: ClickHouseStore, prefix: str) -> list[tuple[Any, ...]]:
    rows = store.query(
        f"SELECT {_TRANSITION} FROM {store.database}.transitions "
        "WHERE startsWith(message_id, {p:String}) ORDER BY message_id, occurred_at, dedupe_key",
        {"p": prefix},
    )
    return [(row[0][len(prefix) :], *row[1:]) for row in rows]


def expected_messages(events: list[CanonicalEvent], prefix: str) -> dict[str, tuple[Any, ...]]:
    by_message: dict[str, list[CanonicalEvent]] = {}
    for event in events:
        by_message.setdefault(event.message_id, []).append(event)
    out = {}
    for message_id, group in by_message.items():
        state = fold(message_id, group)
        if state.concerns_email:
            out[message_id[len(prefix) :]] = tuple(_plain(v) for v in state.row_values()[1:])
    return out


def expected_transitions(events: list[CanonicalEvent], prefix: str) -> list[tuple[Any, ...]]:
    distinct = {(e.message_id, e.dedupe_key): e for e in events if e.status is not None}
    out = []
    ordered = sorted(distinct.values(), key=lambda e: (e.message_id, e.occurred_at, e.dedupe_key))
    for _, group in itertools.groupby(ordered, key=lambda e: e.message_id):
        current: EmailStatus | None = None
        for e in group:
            assert e.status is not None
            before = current
            if current is None or PRECEDENCE[e.status] > PRECEDENCE[current]:
                current = e.status
            row = (
                e.message_id[len(prefix) :],
                e.occurred_at.replace(tzinfo=None),
                e.dedupe_key,
                e.status.value,
            )
            out.append((*row, before.value if before else "", current.value))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=event_sets, data=st.data())
def test_any_split_order_and_duplication_gives_the_same_rows(
    engine: ClickHouseStore, engine_once: ClickHouseStore, events: list[CanonicalEvent], data: st.DataObject
) -> None:
    prefix = f"run{next(_runs)}-"
    events = _renamed(events, prefix)
    engine_once.load([envelope_json(e) for e in events], f"{prefix}|once")

    copies = [semantic_copy(e, n) for n, e in enumerate(data.draw(st.lists(st.sampled_from(events))), 1)]
    values = [envelope_json(e) for e in data.draw(st.permutations(events + copies))]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(values)), max_size=4)))
    batches = [values[a:b] for a, b in itertools.pairwise([0, *cuts, len(values)]) if a < b]
    retried = data.draw(st.lists(st.integers(0, len(batches) - 1), max_size=3))
    for i in [*range(len(batches)), *retried]:  # a retry: the same values under the same token
        engine.load(batches[i], f"{prefix}|{i}")

    got = messages(engine, prefix)
    assert got == messages(engine_once, prefix)
    assert got == expected_messages(events, prefix)
    assert (
        transitions(engine, prefix)
        == transitions(engine_once, prefix)
        == expected_transitions(events, prefix)
    )
    email_ids = {e.message_id[len(prefix) :] for e in events if e.kind not in NON_EMAIL_KINDS}
    assert set(got) == email_ids  # one row per message with an email event, no more


def test_a_retried_batch_adds_no_rows(engine: ClickHouseStore) -> None:
    """The retry of a batch (same token) is dropped by the tables that deduplicate inserts, not merged
    away later (the rollups hold idempotent states and take the rows again, harmlessly)."""
    events = _renamed(sample_events(), "retry-")
    values = [envelope_json(e) for e in events]
    db = engine.database

    def rows() -> tuple[Any, ...]:
        counts = [
            engine.query(f"SELECT count() FROM {db}.{t} WHERE startsWith(message_id, 'retry-')")[0][0]
            for t in ("email_events", "email_state_agg")
        ]
        return tuple(counts)

    engine.load(values, "retry|0")
    first = rows()
    engine.load(values, "retry|0")
    assert rows() == first
    assert first[0] == len(values)


def test_non_email_events_count_but_never_make_a_message(engine: ClickHouseStore) -> None:
    """An operation event under an email's id, loaded in a batch of its own (another part, merged only
    at read time), counts as one of its events and can be its first, as in the reference fold."""
    email = sample_events()[0].model_copy(update={"message_id": "mixed-1"})
    operation = email.model_copy(
        update={
            "kind": EventKind.OPERATION,
            "status": None,
            "raw_type": "com.twilio.comms-api.operation.completed",
            "occurred_at": email.occurred_at - timedelta(hours=1),
        }
    )
    alone = operation.model_copy(update={"message_id": "mixed-2"})
    engine.load([envelope_json(email)], "mixed|0")
    engine.load([envelope_json(operation), envelope_json(alone)], "mixed|1")
    got = messages(engine, "mixed-")
    assert got == expected_messages([email, operation, alone], "mixed-")
    assert set(got) == {"1"}
    assert got["1"][STATE_COLUMNS.index("event_count") - 1] == 2


def test_a_day_late_sent_never_follows_delivered(engine: ClickHouseStore) -> None:
    """Received a day after DELIVERED, a SENT that happened before it comes first in transitions."""
    base = datetime(2026, 11, 23, 10, tzinfo=UTC)

    def event(status: EmailStatus, at: datetime, received: datetime) -> CanonicalEvent:
        return CanonicalEvent(
            event_id=f"late-{status}", message_id="late-1", kind=EventKind.STATUS, status=status,
            raw_type=status.value, occurred_at=at, received_at=received, source=Source.WEBHOOK,
            provider=Provider.TWILIO, recipient="ann@example.org", recipient_domain="example.org",
        )  # fmt: skip

    queued = event(EmailStatus.QUEUED, base, base)
    delivered = event(EmailStatus.DELIVERED, base + timedelta(seconds=5), base + timedelta(seconds=6))
    sent = event(EmailStatus.SENT, base + timedelta(seconds=1), base + timedelta(days=1))
    engine.load([envelope_json(queued), envelope_json(delivered)], "late|0")
    engine.load([envelope_json(sent)], "late|1")
    rows = engine.query(
        f"SELECT status, previous_status, current_status, late FROM {engine.database}.transitions "
        "WHERE message_id = 'late-1' ORDER BY occurred_at, dedupe_key"
    )
    assert rows == [
        ("QUEUED", "", "QUEUED", False),
        ("SENT", "QUEUED", "SENT", True),  # DELIVERED, after it in time, was received first
        ("DELIVERED", "SENT", "DELIVERED", False),
    ]
