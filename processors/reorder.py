"""Bounded-lateness reordering for one partition. Pure: no I/O, no clock (the caller decides idling).

Events wait until the partition's event-time watermark (highest event time seen minus the allowed
lateness) passes them, then leave in canonical order: event time, then status precedence, then dedupe
key. An event at or behind the watermark on arrival is emitted at once and flagged late; it is still
merged. The commit point is the offset of the oldest event still waiting (nothing unemitted is ever
committed) together with the watermark as it stood before that event arrived, so a replay from the
commit point reproduces the same watermark, the same `late` flags and the same emissions.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from processors.batch import Consumed
from schemas.event import CanonicalEvent
from schemas.status import precedence

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def canonical_key(event: CanonicalEvent) -> tuple[datetime, int, str]:
    rank = precedence(event.status) if event.status is not None else -1
    return (event.occurred_at, rank, event.dedupe_key)


@dataclass(frozen=True, slots=True)
class CommitPoint:
    offset: int  # next offset to read after a restart
    watermark: datetime  # the watermark to resume with


@dataclass(order=True, slots=True)
class _Waiting:
    key: tuple[datetime, int, str]
    offset: int
    item: Consumed
    watermark_before: datetime


class PartitionReorder:
    def __init__(self, lateness: timedelta, watermark: datetime = EPOCH) -> None:
        self.lateness = lateness
        self.watermark = watermark
        self._waiting: list[_Waiting] = []
        self._next_offset: int | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    def push(self, item: Consumed) -> list[Consumed]:
        """Take the next record of the partition (offset order); return what may leave now."""
        self._next_offset = item.offset + 1
        at = item.event.occurred_at
        if at <= self.watermark:
            return [Consumed(item.partition, item.offset, item.event, late=True)]
        heapq.heappush(self._waiting, _Waiting(canonical_key(item.event), item.offset, item, self.watermark))
        self.watermark = max(self.watermark, at - self.lateness)
        return self._release()

    def skip(self, offset: int) -> None:
        """A record that will never be emitted (dead letter) still moves the commit point."""
        self._next_offset = offset + 1

    def flush(self) -> list[Consumed]:
        """Emit everything waiting (the partition went idle): the watermark jumps to the newest time."""
        if self._waiting:
            self.watermark = max(self.watermark, max(w.key[0] for w in self._waiting))
        return self._release()

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
    return str(int(watermark.timestamp() * 1000))


def decode_watermark(metadata: str | None) -> datetime:
    if not metadata or not metadata.isdigit():
        return EPOCH
    return EPOCH + timedelta(milliseconds=int(metadata))
