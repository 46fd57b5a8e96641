"""Bounded-lateness reordering for one partition. Pure: no I/O; the caller passes the clock reading.

Events wait until the partition's event-time watermark (highest event time seen minus the allowed
lateness) passes them, then leave in canonical order: event time, then status precedence, then dedupe
key. An event at or behind the watermark on arrival is emitted at once and flagged late; it is still
merged. No event waits longer than ``max_wait_s`` of processing time: when the oldest one has, the
buffer flushes and the watermark jumps to the newest event time, so a quiet partition still drains.

The commit point is the offset of the oldest event still waiting (nothing unemitted is ever committed)
with the watermark as it stood before that event arrived; a replay from the commit point with that
watermark reproduces the same `late` flags and emissions, flush timing aside.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from processors.batch import Consumed
from schemas.event import CanonicalEvent
from schemas.status import precedence

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# An event cannot have happened after mailpulse received it: a later event time is the sender's clock
# error, and counting it at its ingest time keeps one such event from making everything after it late.
MAX_FUTURE_SKEW = timedelta(0)


def canonical_key(event: CanonicalEvent) -> tuple[datetime, int, str]:
    rank = precedence(event.status) if event.status is not None else -1
    return (event.occurred_at, rank, event.dedupe_key)


def watermark_time(event: CanonicalEvent) -> datetime:
    return min(event.occurred_at, event.received_at + MAX_FUTURE_SKEW)


@dataclass(frozen=True, slots=True)
class CommitPoint:
    offset: int  # next offset to read after a restart
    watermark: datetime  # the watermark to resume with


@dataclass(order=True, slots=True)
class _Waiting:
    key: tuple[datetime, int, str]
    offset: int
    arrived: float
    item: Consumed
    watermark_before: datetime


class PartitionReorder:
    def __init__(self, lateness: timedelta, max_wait_s: float, watermark: datetime = EPOCH) -> None:
        self.lateness = lateness
        self.max_wait_s = max_wait_s
        self.watermark = watermark
        self._waiting: list[_Waiting] = []
        self._next_offset: int | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    def push(self, item: Consumed, now: float) -> list[Consumed]:
        """Take the next record of the partition (offset order); return what may leave now."""
        self._next_offset = item.offset + 1
        if item.event.occurred_at <= self.watermark:
            return [Consumed(item.partition, item.offset, item.event, late=True)]
        key = canonical_key(item.event)
        heapq.heappush(self._waiting, _Waiting(key, item.offset, now, item, self.watermark))
        self.watermark = max(self.watermark, watermark_time(item.event) - self.lateness)
        return self._release()

    def skip(self, offset: int) -> None:
        """A record that will never be emitted (dead letter) still moves the commit point."""
        self._next_offset = offset + 1

    def overdue(self, now: float) -> bool:
        return any(now - w.arrived >= self.max_wait_s for w in self._waiting)

    def flush(self) -> list[Consumed]:
        """Emit everything waiting, in canonical order; the watermark jumps to the newest of them."""
        if self._waiting:
            newest = max(watermark_time(w.item.event) for w in self._waiting)
            self.watermark = max(self.watermark, newest)
        out = [heapq.heappop(self._waiting).item for _ in range(len(self._waiting))]
        return out

    def _release(self) -> list[Consumed]:
        out = []
        while self._waiting and self._waiting[0].key[0] <= self.watermark:
            out.append(heapq.heappop(self._waiting).item)
        return out

    def commit_point(self) -> CommitPoint | None:
        if self._waiting:
            oldest = min(self._waiting, key=lambda w: w.offset)
            return CommitPoint(oldest.offset, oldest.watermark_before)
        if self._next_offset is None:
            return None
        return CommitPoint(self._next_offset, self.watermark)


def encode_watermark(watermark: datetime) -> str:
    # Integer arithmetic: float timestamps lose a millisecond for some dates.
    return str((watermark - EPOCH) // timedelta(milliseconds=1))


def decode_watermark(metadata: str | None) -> datetime:
    """The watermark stored with a commit; EPOCH (nothing late yet) when the broker kept none or junk."""
    if not metadata or not (metadata.isascii() and metadata.isdigit()):
        return EPOCH
    try:
        return EPOCH + timedelta(milliseconds=int(metadata))
    except OverflowError:
        return EPOCH
