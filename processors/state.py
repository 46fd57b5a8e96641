"""Per-message state as a merge of the set of distinct events. Pure: no I/O.

Every field is a semilattice join over the events seen (min, max, set-union, or "value of the
smallest event"), so ``apply`` is commutative, associative and idempotent: any permutation or
duplication of the same events yields an equal state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from schemas.event import CanonicalEvent, Provider
from schemas.status import FAILURE_STATUSES, EmailStatus, EventKind, highest

# Kinds that say nothing about one email (they still get events rows, never a state row).
NON_EMAIL_KINDS = frozenset({EventKind.OPERATION, EventKind.ACCOUNT_STATUS_CHANGE})


def order_key(event: CanonicalEvent) -> tuple[datetime, str]:
    """Total order on events, used wherever "the first one" must not depend on arrival order."""
    return (event.occurred_at, event.dedupe_key)


@dataclass(slots=True)
class MessageState:
    message_id: str
    seen: set[str] = field(default_factory=set)  # dedupe keys merged so far
    first_at: dict[EmailStatus, datetime] = field(default_factory=dict)
    counts: dict[EmailStatus | EventKind, int] = field(default_factory=dict)
    machine_opens: int = 0
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None
    email_events: int = 0
    # Descriptive fields come from the smallest event (order_key) that has them.
    describing: CanonicalEvent | None = None
    failure: CanonicalEvent | None = None

    @property
    def status(self) -> EmailStatus | None:
        return highest(frozenset(self.first_at))

    @property
    def event_count(self) -> int:
        return len(self.seen)

    @property
    def provider(self) -> Provider | None:
        return self.describing.provider if self.describing else None

    @property
    def concerns_email(self) -> bool:
        return self.email_events > 0

    def apply(self, event: CanonicalEvent) -> bool:
        """Merge one event; False (and no change) when an equal event was merged before."""
        key = event.dedupe_key
        if key in self.seen:
            return False
        self.seen.add(key)
        at = event.occurred_at
        self.first_event_at = at if self.first_event_at is None else min(self.first_event_at, at)
        self.last_event_at = at if self.last_event_at is None else max(self.last_event_at, at)
        if event.kind in NON_EMAIL_KINDS:
            return True
        self.email_events += 1
        bucket: EmailStatus | EventKind = event.status if event.status is not None else event.kind
        self.counts[bucket] = self.counts.get(bucket, 0) + 1
        if event.status is not None:
            previous = self.first_at.get(event.status)
            self.first_at[event.status] = at if previous is None else min(previous, at)
            if event.status is EmailStatus.OPENED and event.machine_open:
                self.machine_opens += 1
            if event.status in FAILURE_STATUSES and (
                self.failure is None or order_key(event) < order_key(self.failure)
            ):
                self.failure = event
        if self.describing is None or _describes_better(event, self.describing):
            self.describing = event
        return True

    def count(self, bucket: EmailStatus | EventKind) -> int:
        return self.counts.get(bucket, 0)


def _describes_better(candidate: CanonicalEvent, current: CanonicalEvent) -> bool:
    # Prefer events that name both parties (Twilio resources do, SendGrid events lack the sender),
    # then the earliest; both criteria are properties of the event, so arrival order cannot matter.
    def richness(e: CanonicalEvent) -> int:
        return (
            (e.recipient is not None) + (e.sender is not None) + bool(e.tags) + (e.operation_id is not None)
        )

    return (-richness(candidate), order_key(candidate)) < (-richness(current), order_key(current))


def fold(message_id: str, events: list[CanonicalEvent]) -> MessageState:
    state = MessageState(message_id)
    for event in events:
        state.apply(event)
    return state
