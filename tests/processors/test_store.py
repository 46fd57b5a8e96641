"""ClickHouseStore against the real engine (chDB): state rebuild finds exactly the asked messages,
whatever characters their ids hold (the ids are written into the query as literals)."""

from __future__ import annotations

import pytest

from processors.rows import event_row
from processors.store import ClickHouseStore
from schemas.status import EmailStatus
from tests.processors.test_state_properties import ev

pytestmark = [pytest.mark.clickhouse]

IDS = [
    "plain", "it's", "back\\slash", "tab\there", "new\nline", "tick`", "ends with \\", "é\U0001f600",
    "quote' OR '1'='1", "\\'",
]  # fmt: skip


def test_load_events_finds_ids_that_need_escaping(store: ClickHouseStore) -> None:
    events = [ev(EmailStatus.DELIVERED, 1, message_id=m, event_id=f"e{i}") for i, m in enumerate(IDS)]
    store.write([event_row(e, 0, i) for i, e in enumerate(events)], [], [], "escaping")
    stored = {e.message_id: [e] for e in events}
    assert store.load_events(IDS) == stored
    assert store.load_events(["it"]) == {}
    some = ["quote' OR '1'='1", "plain"]
    assert store.load_events(some) == {m: stored[m] for m in some}
