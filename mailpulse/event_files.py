"""The event files `mailpulse replay` reads and `mailpulse dump` writes (the commands: file_commands.py).

Replay backfills a SendGrid event export or a mailpulse dump through the pipeline.

Records are parsed by the same code as the webhooks (or validated as canonical envelopes, for a dump),
published to the status topic like ingest does, and loaded by the processors, which recognise events
they already hold: replaying a file twice changes nothing. A record that cannot be read is reported with
its line and every problem; the good records around it are still published.

Formats (``--format auto`` picks by extension, then by the first record):
- ``csv``: a header of Event Webhook field names (email, timestamp, event, sg_event_id, sg_message_id,
  smtp-id, reason, status, type, category, ...), one event per row, nested values (category lists, pool)
  as JSON; other columns are custom args.
- ``jsonl``: one Event Webhook event object per line, or captured webhook bodies (a JSON array per line).
- ``dump``: one mailpulse envelope per line, as `mailpulse dump` writes it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from schemas.event import CanonicalEvent, Envelope, EnvelopeV1, envelope_json
from schemas.problems import InvalidEvent, problems_from
from schemas.sendgrid import parse_sendgrid_event

Format = Literal["auto", "csv", "jsonl", "dump"]
FORMATS: tuple[Format, ...] = ("auto", "csv", "jsonl", "dump")
_CSV_INTEGERS = frozenset({"timestamp", "asm_group_id", "tls"})
_CSV_BOOLEANS = frozenset({"sg_machine_open"})


@dataclass(frozen=True, slots=True)
class BadRecord:
    line: int
    problems: str


@dataclass(slots=True)
class ReadResult:
    events: list[CanonicalEvent] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)


def detect(path: Path, first_line: str) -> Format:
    if path.suffix.lower() == ".csv":
        return "csv"
    try:
        first = orjson.loads(first_line) if first_line.strip() else None
    except orjson.JSONDecodeError:
        return "csv" if "," in first_line else "jsonl"
    if isinstance(first, dict) and (
        ("v" in first and "dedupe_key" in first) or ("schema_version" in first and "event" in first)
    ):
        return "dump"
    return "jsonl"


def csv_event(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the Event Webhook would have posted it (empty cells left out)."""
    event: dict[str, Any] = {}
    for name, value in row.items():
        if not name or value is None or value == "":
            continue
        if name in _CSV_INTEGERS and value.lstrip("-").isdigit():
            event[name] = int(value)
        elif name in _CSV_BOOLEANS:
            event[name] = value.strip().lower() in ("true", "1", "yes")
        elif value.startswith(("[", "{")):  # nested fields (category lists, pool) exported as JSON
            try:
                event[name] = orjson.loads(value)
            except orjson.JSONDecodeError:
                event[name] = value
        else:
            event[name] = value
    return event


def _raw_records(text_lines: Iterator[str], fmt: Format) -> Iterator[tuple[int, Any | BadRecord]]:
    """(line number, raw record or the reason it is unreadable)."""
    if fmt == "csv":
        reader = csv.DictReader(text_lines)
        for row in reader:
            yield reader.line_num, csv_event(row)
        return
    for number, line in enumerate(text_lines, start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, BadRecord(number, f"not JSON: {exc}")
            continue
        for item in value if isinstance(value, list) and fmt == "jsonl" else [value]:
            yield number, item


def to_event(raw: Any, fmt: Format, received_at: datetime) -> CanonicalEvent:
    """Raises InvalidEvent listing every problem."""
    if fmt == "dump":
        try:
            # A dump written before envelope v2 nests the event under "event".
            model = EnvelopeV1 if isinstance(raw, dict) and "event" in raw else Envelope
            return model.model_validate(raw).event
        except ValidationError as exc:
            raise InvalidEvent(problems_from(exc)) from None
    return parse_sendgrid_event(raw, received_at)


def read_events(lines: Iterator[str], fmt: Format, received_at: datetime, limit: int) -> Iterator[ReadResult]:
    """Chunks of at most ``limit`` events, each with the bad records met while reading them."""
    chunk = ReadResult()
    for number, raw in _raw_records(lines, fmt):
        if isinstance(raw, BadRecord):
            chunk.bad.append(raw)
            continue
        try:
            chunk.events.append(to_event(raw, fmt, received_at))
        except InvalidEvent as exc:
            chunk.bad.append(BadRecord(number, str(exc)))
        if len(chunk.events) >= limit:
            yield chunk
            chunk = ReadResult()
    if chunk.events or chunk.bad:
        yield chunk


def open_lines(path: Path, fmt: Format) -> tuple[Format, io.TextIOWrapper]:
    """The file as text lines and its resolved format (newline='' keeps quoted CSV newlines)."""
    handle = path.open(encoding="utf-8", newline="")
    if fmt == "auto":
        first = handle.readline()
        handle.seek(0)
        fmt = detect(path, first)
    return fmt, handle


def dump_line(event: CanonicalEvent) -> bytes:
    return envelope_json(event) + b"\n"


@dataclass(slots=True)
class ReplayStats:
    published: int = 0
    bad: list[BadRecord] = field(default_factory=list)


async def replay_file(
    path: Path,
    fmt: Format,
    publish: Callable[[list[CanonicalEvent]], Awaitable[None]],
    received_at: datetime,
    progress: Callable[[int], None] = lambda _: None,
    chunk: int = 1000,
) -> ReplayStats:
    """Publish every readable record of ``path`` in chunks (each acknowledged before the next is read);
    ``progress`` gets the bytes read so far."""
    stats = ReplayStats()
    fmt, handle = open_lines(path, fmt)
    read = 0

    def counted() -> Iterator[str]:
        nonlocal read
        for line in handle:
            read += len(line.encode())
            yield line

    with handle:
        for result in read_events(counted(), fmt, received_at, chunk):
            if result.events:
                await publish(result.events)
            stats.published += len(result.events)
            stats.bad += result.bad
            progress(read)
    return stats
