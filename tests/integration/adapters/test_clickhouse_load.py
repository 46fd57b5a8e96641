"""``ClickHouseStore.load`` on real chDB: raw envelope v2 values in, BadInput for data ClickHouse
refuses (nothing of the block stored), other failures as they are."""

from __future__ import annotations

import orjson
import pytest

from adapters.clickhouse import BadInput, ClickHouseStore
from schemas.event import CanonicalEvent, envelope_json
from tests.schemas.events import sample_events

pytestmark = [pytest.mark.clickhouse]


def _events(store: ClickHouseStore) -> int:
    [(n,)] = store.query(f"SELECT count() FROM {store.database}.email_events")
    return int(n)


def test_valid_values_load(store: ClickHouseStore) -> None:
    events = sample_events()
    store.load([envelope_json(e) for e in events], "t|0|0-9")
    assert _events(store) == len(events)


def _spoilt(event: CanonicalEvent, **change: object) -> bytes:
    fields = orjson.loads(envelope_json(event))
    fields.update(change)
    return orjson.dumps(fields)


@pytest.mark.parametrize(
    "change",
    [
        {"v": 3},
        {"occurred_at": "yesterday"},
        {"kind": "no-such-kind"},
        {"status": None},  # kind status without one
        {"dedupe_key": "short"},
        {"message_id": ""},
        {"attempt": "many"},
        {"tags": ["a"]},
        {"occurred_at": None},
        {"v": None},
    ],
)
def test_bad_values_are_bad_input(store: ClickHouseStore, change: dict[str, object]) -> None:
    good = [envelope_json(e) for e in sample_events()]
    bad = _spoilt(sample_events()[0], **change)
    with pytest.raises(BadInput) as refused:
        store.load([*good, bad], "t|0|0-9")
    assert refused.value.code is not None
    assert _events(store) == 0


def test_not_json_is_bad_input(store: ClickHouseStore) -> None:
    with pytest.raises(BadInput):
        store.load([b"not json"], "t|0|0")


def test_other_failures_are_not_bad_input(store: ClickHouseStore) -> None:
    missing = ClickHouseStore(store.client, store.database + "_missing")
    with pytest.raises(Exception) as failed:
        missing.load([envelope_json(sample_events()[0])], "t|0|0")
    assert not isinstance(failed.value, BadInput)
