"""`mailpulse replay FILE` on the real broker and chDB: SendGrid exports (CSV, JSON lines) and a mailpulse
dump land exactly as the generator's truth, a second run changes nothing, bad records are listed with
every problem and the good ones around them still land."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from adapters.clickhouse import ClickHouseStore
from mailpulse.event_files import csv_event, read_events
from mailpulse.file_commands import dump, replay
from mailpulse.settings import Settings
from simulator.traffic import Traffic, generate
from tests.integration.groundtruth import mismatches, read_tables

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def sendgrid_traffic(messages: int, seed: int) -> Traffic:
    return generate(messages, seed, twilio_share=0.0, duplicate_rate=0.2)


def events_of(traffic: Traffic) -> list[dict[str, Any]]:
    return [event for batch in traffic.sendgrid_batches for event in batch]


def write_jsonl(path: Path, events: list[dict[str, Any]], bad_lines: dict[int, bytes]) -> None:
    lines = [orjson.dumps(e) for e in events]
    for index, line in sorted(bad_lines.items()):
        lines.insert(index, line)
    path.write_bytes(b"\n".join(lines) + b"\n")


def write_csv(path: Path, events: list[dict[str, Any]]) -> None:
    columns = sorted({key for event in events for key in event})
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, columns)
        writer.writeheader()
        for event in events:
            nested = (list, dict, bool)
            writer.writerow(
                {k: orjson.dumps(v).decode() if isinstance(v, nested) else v for k, v in event.items()}
            )


def test_csv_rows_become_the_posted_events() -> None:
    events = events_of(sendgrid_traffic(30, seed=3))
    rows = [{k: "" for k in ("email", "reason")} | {k: str(v) for k, v in e.items()} for e in events]
    for event, row in zip(events, rows, strict=True):
        for key, value in event.items():
            if isinstance(value, list | dict):
                row[key] = orjson.dumps(value).decode()
        if "sg_machine_open" in event:
            row["sg_machine_open"] = str(event["sg_machine_open"]).lower()
        assert csv_event(row) == event


def test_bad_records_are_listed_and_good_ones_kept(tmp_path: Path) -> None:
    events = events_of(sendgrid_traffic(20, seed=4))
    path = tmp_path / "export.jsonl"
    write_jsonl(path, events, {0: b"{not json", 5: b'{"event": "delivered", "timestamp": "soon"}'})
    chunks = list(read_events(iter(path.read_text().splitlines(True)), "jsonl", datetime.now(UTC), 7))
    assert sum(len(c.events) for c in chunks) == len(events)
    bad = [b for c in chunks for b in c.bad]
    assert [b.line for b in bad] == [1, 6]
    assert bad[0].problems.startswith("not JSON")
    # Every problem of the second record at once: the missing address, the bad time, no message id.
    assert all(word in bad[1].problems for word in ("email", "timestamp", "sg_message_id"))


def test_replaying_exports_twice_lands_the_truth_once(
    settings: Settings, store: ClickHouseStore, clickhouse: Client, tmp_path: Path
) -> None:
    traffic = sendgrid_traffic(150, seed=5)
    events = events_of(traffic)
    half = len(events) // 2
    first, second = tmp_path / "part1.csv", tmp_path / "part2.jsonl"
    write_csv(first, events[:half])
    write_jsonl(second, events[half:], {3: b"[1, 2"})
    assert replay(settings, first, "auto", process=True) == 0
    assert replay(settings, second, "auto", process=True) == 1  # one unreadable line, the rest published
    tables = read_tables(clickhouse, store.database)
    assert mismatches(tables, traffic.truth) == []
    assert replay(settings, first, "csv", process=True) == 0  # again: nothing changes
    assert replay(settings, second, "jsonl", process=True) == 1
    again = read_tables(clickhouse, store.database)
    assert again.messages == tables.messages and sorted(again.events) == sorted(tables.events)
    # The replayed records are new records: email_events keeps their copies until a merge, the
    # deduplicated views do not change.
    views = ("events", "transitions", "late_transitions")
    assert {v: again.counts[v] for v in views} == {v: tables.counts[v] for v in views}

    # A dump of this database, replayed into an empty one, reproduces it.
    dumped = tmp_path / "dump.jsonl"
    assert dump(settings, dumped, None) == 0
    assert sum(1 for _ in dumped.open()) == tables.counts["events"]
    fresh = settings.model_copy(
        update={"clickhouse_database": f"{settings.clickhouse_database}_copy", "consumer_group": "copy"}
    )
    fresh_topics = fresh.model_copy(update={"status_topic": f"{settings.status_topic}-copy"})
    assert replay(fresh_topics, dumped, "auto", process=True) == 0
    copy = read_tables(clickhouse, fresh.clickhouse_database)
    assert copy.messages == tables.messages and copy.events and sorted(copy.events) == sorted(tables.events)
