"""One consumed batch -> the rows to load. Pure: the caller supplies rebuilt state and does the I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from processors.state import MessageState
from schemas.event import CanonicalEvent


@dataclass(frozen=True, slots=True)
class Consumed:
    """A decoded event with the Kafka position it came from."""

    partition: int
    offset: int
    event: CanonicalEvent
    late: bool = False  # arrived behind its partition's watermark (see processors.reorder)


@dataclass(slots=True)
class MergeResult:
    new_events: list[Consumed] = field(default_factory=list)
    touched: dict[str, MessageState] = field(default_factory=dict)
    duplicates: int = 0

    @property
    def changed_states(self) -> list[MessageState]:
        return [s for s in self.touched.values() if s.concerns_email]


def merge_batch(batch: Iterable[Consumed], state_of: Callable[[str], MessageState]) -> MergeResult:
    """Merge ``batch`` into the states ``state_of`` returns (already rebuilt from storage).

    An event whose dedupe key its message has already merged is dropped and counted; its offset is
    still covered by the batch's commit, so dropping never loses position.
    """
    result = MergeResult()
    for item in batch:
        state = state_of(item.event.message_id)
        if state.apply(item.event):
            result.new_events.append(item)
            result.touched[state.message_id] = state
        else:
            result.duplicates += 1
    return result


def offset_ranges(positions: Iterable[tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """Per partition, the first and last offset among (partition, offset) positions."""
    ranges: dict[int, tuple[int, int]] = {}
    for partition, offset in positions:
        lo, hi = ranges.get(partition, (offset, offset))
        ranges[partition] = (min(lo, offset), max(hi, offset))
    return ranges


def dedup_token(topic: str, ranges: dict[int, tuple[int, int]]) -> str:
    """Insert deduplication token from positions only, never from contents (DESIGN.md)."""
    spans = ",".join(f"{p}:{lo}-{hi}" for p, (lo, hi) in sorted(ranges.items()))
    return f"{topic}|{spans}"
