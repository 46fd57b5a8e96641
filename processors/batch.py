"""One consumed batch -> the rows to load. Pure: the caller supplies rebuilt state and does the I/O."""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson

from processors.state import MessageState
from schemas.event import CanonicalEvent
from schemas.status import PRECEDENCE, EmailStatus


# NamedTuples, not frozen dataclasses: built once or twice per event, and a frozen dataclass's
# __init__ sets each field through object.__setattr__ (~0.8 us a Consumed, measured).
class Consumed(NamedTuple):
    """A decoded event with the Kafka position it came from."""

    partition: int
    offset: int
    event: CanonicalEvent
    late: bool = False  # arrived behind its partition's watermark (see processors.reorder)


class Transition(NamedTuple):
    """A status event that was merged, with the message's status before and after it."""

    item: Consumed
    previous: EmailStatus | None
    current: EmailStatus


@dataclass(slots=True)
class MergeResult:
    new_events: list[Consumed] = field(default_factory=list)
    touched: dict[str, MessageState] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    duplicates: int = 0

    @property
    def changed_states(self) -> list[MessageState]:
        return [s for s in self.touched.values() if s.concerns_email]


def merge_batch(batch: Iterable[Consumed], state_of: Callable[[str], MessageState]) -> MergeResult:
    """Merge ``batch`` (in the order given) into the states ``state_of`` returns (already rebuilt).

    An event whose dedupe key its message has already merged is dropped and counted; its offset is
    still covered by the batch's commit, so dropping never loses position.
    """
    result = MergeResult()
    new_events, touched, transitions = result.new_events, result.touched, result.transitions
    for item in batch:
        event = item.event
        state = state_of(event.message_id)
        status = event.status
        previous = state.status if status is not None else None
        if state.apply(event):
            new_events.append(item)
            touched[state.message_id] = state
            if status is not None:
                # The status is the highest-precedence one present: the previous one or this event's.
                current = (
                    previous
                    if previous is not None and PRECEDENCE[previous] >= PRECEDENCE[status]
                    else status
                )
                transitions.append(Transition(item, previous, current))
        else:
            result.duplicates += 1
    return result


def transition_value(t: Transition) -> bytes:
    """The transitions topic's JSON for ``t``. ``occurred_at`` goes to orjson as a datetime: it writes
    an aware one exactly as ``isoformat()`` does ("+00:00", microseconds when there are any), about
    1 us a transition cheaper than formatting it first (tests/processors/test_batch.py holds them equal)."""
    e = t.item.event
    return orjson.dumps(
        {
            "message_id": e.message_id,
            "status": e.status,
            "previous_status": t.previous,
            "current_status": t.current,
            "occurred_at": e.occurred_at,
            "late": t.item.late,
            "event_id": e.event_id,
            "dedupe_key": e.dedupe_key,
            "provider": e.provider,
        }
    )


def dedup_token(topic: str, positions: Iterable[tuple[int, int]]) -> str:
    """Insert deduplication token from Kafka positions only, never from contents (DESIGN.md): the
    same emitted records always carry the same token, so ClickHouse drops a retried insert."""
    by_partition: dict[int, list[int]] = {}
    for partition, offset in positions:
        offsets = by_partition.get(partition)
        if offsets is None:
            offsets = by_partition[partition] = []
        offsets.append(offset)
    # Each partition as (partition, count) then its sorted offsets, fixed-width: an unambiguous
    # encoding, hashed without building a string per position (20,000 of them per batch).
    digest = hashlib.blake2b(digest_size=16)
    for partition in sorted(by_partition):
        offsets = sorted(by_partition[partition])
        digest.update(array("q", (partition, len(offsets))).tobytes())
        digest.update(array("q", offsets).tobytes())
    return f"{topic}|{digest.hexdigest()}"
