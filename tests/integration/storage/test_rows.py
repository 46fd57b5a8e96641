"""`mailpulse dump` writes envelope v2 lines and `mailpulse replay` reads them, and the v1 lines older
dumps hold; the rows dump reads rebuild the events loaded (chDB)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.clickhouse import ClickHouseStore
from schemas.event import envelope_json
from schemas.sendgrid_inbound import InboundPost, UploadedFile, parse_inbound
from storage.rows import event_from_row
from storage.tables import EVENT_COLUMNS
from tests.ingest.mail import ATTACHMENTS, inbound_fields
from tests.schemas.events import sample_events

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.clickhouse
def test_stored_events_come_back_as_they_were_loaded(store: ClickHouseStore) -> None:
    """What `mailpulse dump` reads: events loaded through the landing table, rebuilt from their rows
    (received mail with attachments included), equal the events, dedupe keys too."""
    files = [UploadedFile(part, name, ctype, size) for part, name, ctype, size, _ in ATTACHMENTS]
    mail = parse_inbound(InboundPost(inbound_fields(), files), NOW)
    events = [*sample_events(), mail]
    store.load([envelope_json(e) for e in events], "dump")
    result = store.client.query(f"SELECT {', '.join(EVENT_COLUMNS)} FROM {store.database}.events")
    back = {e.event_id: e for e in map(event_from_row, result.named_results())}
    assert back == {e.event_id: e for e in events}
    assert all(back[e.event_id].dedupe_key == e.dedupe_key for e in events)
