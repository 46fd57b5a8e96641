"""Dump lines: v2 envelopes that read back, v1 lines still read, webhook lines not taken for dumps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from mailpulse.event_files import detect, dump_line, to_event
from schemas.event import EnvelopeV1, envelope_json
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
