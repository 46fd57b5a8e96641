"""`mailpulse dump` writes envelope v2 lines and `mailpulse replay` reads them, and the v1 lines older
dumps hold; the rows dump reads rebuild the events loaded (chDB)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from adapters.clickhouse import ClickHouseStore
from mailpulse.event_files import detect, dump_line, to_event
from schemas.event import EnvelopeV1, envelope_json
from schemas.sendgrid_inbound import InboundPost, UploadedFile, parse_inbound
from storage.rows import event_from_row
from storage.tables import EVENT_COLUMNS
from tests.ingest.mail import ATTACHMENTS, inbound_fields
from tests.schemas.events import sample_events

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_dump_lines_are_v2_and_read_back() -> None:
    for event in sample_events():
        line = dump_line(event)
        assert line == envelope_json(event) + b"\n"
        assert detect(Path("x.jsonl"), line.decode()) == "dump"
        assert to_event(orjson.loads(line), "dump", NOW) == event


def test_v1_dump_lines_still_read() -> None:
    for event in sample_events():
        line = EnvelopeV1(event=event).model_dump_json()
        assert detect(Path("x.jsonl"), line) == "dump"
        assert to_event(orjson.loads(line), "dump", NOW) == event


def test_webhook_lines_are_not_dumps() -> None:
    assert detect(Path("x.jsonl"), '{"event": "delivered", "email": "a@b.c", "timestamp": 1}') == "jsonl"


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
