"""The per-message state of the pure core the processor used before ClickHouse merged it, kept as the
reference the engine's state is tested against (tests/integration/storage/test_engine_properties.py). Pure.

Every field is a semilattice join over the events seen (min, max, set-union, or "value of the
smallest event"), so ``apply`` is commutative, associative and idempotent: any permutation or
duplication of the same events yields an equal state.
"""

from __future__ import annotations

import sys
from array import array
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from schemas.event import CanonicalEvent, Provider
from schemas.status import FAILURE_STATUSES, PRECEDENCE, EmailStatus, EventKind

# Kinds that say nothing about one email (they still get events rows, never a state row).
NON_EMAIL_KINDS = frozenset({EventKind.OPERATION, EventKind.ACCOUNT_STATUS_CHANGE})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_STATUSES = tuple(EmailStatus)
_BUCKETS: tuple[EmailStatus | EventKind, ...] = (*EmailStatus, *EventKind)
_BUCKET_INDEX = {b: i for i, b in enumerate(_BUCKETS)}  # statuses first: status index == bucket index
# MessageState._times: first time of each status, then of any event, then last event time (epoch ms).
_FIRST_EVENT = len(_STATUSES)
_STATUS_IX = range(_FIRST_EVENT)
_LAST_EVENT = _FIRST_EVENT + 1
_NONE = -1  # no time yet (event times are after 1970, so never negative)
_NO_TIMES = array("q", [_NONE] * (_LAST_EVENT + 1))
# MessageState._counts: one per bucket, then machine opens, then email events.
_MACHINE_OPENS = len(_BUCKETS)
_EMAIL_EVENTS = _MACHINE_OPENS + 1
_NO_COUNTS = array("I", [0] * (_EMAIL_EVENTS + 1))
_OPENED, _CLICKS, _DEFERRALS = (
    _BUCKET_INDEX[b] for b in (EmailStatus.OPENED, EventKind.CLICK, EventKind.DEFERRED)
)
_KEY_BYTES = 16  # a dedupe key is 32 hex digits
# (index in _times, status) from the highest precedence down: the current status is the first present.
_BY_PRECEDENCE = tuple(
    sorted(((i, s) for i, s in enumerate(_STATUSES)), key=lambda p: PRECEDENCE[p[1]], reverse=True)
)
_TAGS: dict[tuple[str, ...], tuple[str, ...]] = {}  # one copy of each tag set (bounded below)
_MAX_SHARED_TAGS = 10_000


def _ms(at: datetime) -> int:
    return (at - _EPOCH) // _MS


def _at(ms: int) -> datetime | None:
    return None if ms == _NONE else _EPOCH + timedelta(milliseconds=ms)


def _shared(value: str | None) -> str | None:
    # Domains, senders, operation ids repeat across messages: one copy of each.
    return None if value is None else sys.intern(value)


def _shared_tags(tags: dict[str, str]) -> tuple[str, ...]:
    flat = tuple(sys.intern(s) for item in sorted(tags.items()) for s in item)
    if len(_TAGS) < _MAX_SHARED_TAGS:
        return _TAGS.setdefault(flat, flat)
    return _TAGS.get(flat, flat)


def order_key(event: CanonicalEvent) -> tuple[datetime, str]:
    """Total order on events, used wherever "the first one" must not depend on arrival order."""
    return (event.occurred_at, event.dedupe_key)


def _richness(e: CanonicalEvent) -> int:
    return (e.recipient is not None) + (e.sender is not None) + bool(e.tags) + (e.operation_id is not None)


class Describing(NamedTuple):
    """What the state row says about a message, from its best-describing event: the one naming most
    of recipient, sender, tags and operation id (Twilio resources name both parties, SendGrid events
    lack the sender), then the earliest by order_key. Properties of the event, not of arrival order."""

    provider: Provider
    operation_id: str | None
    recipient: str | None
    recipient_domain: str | None
    sender: str | None
    sender_domain: str | None
    tags: tuple[str, ...]  # key, value, key, value... sorted by key

    @classmethod
    def of(cls, e: CanonicalEvent) -> Describing:
        return cls(
            e.provider, _shared(e.operation_id), e.recipient, _shared(e.recipient_domain), _shared(e.sender),
            _shared(e.sender_domain), _shared_tags(e.tags),
        )  # fmt: skip

    @property
    def tag_dict(self) -> dict[str, str]:
        return dict(zip(self.tags[::2], self.tags[1::2], strict=True))


class Failure(NamedTuple):
    """The earliest failure event (order_key) of a message."""

    occurred_at: datetime
    dedupe_key: str
    status: EmailStatus
    reason: str | None
    bounce_type: str | None

    @classmethod
    def of(cls, e: CanonicalEvent) -> Failure:
        assert e.status is not None
        return cls(e.occurred_at, e.dedupe_key, e.status, e.reason, _shared(e.bounce_type))


class MessageState:
    """Slotted, with the describing event's fields flattened into it (no per-state dict or tuple)."""

    __slots__ = (
        "_counts", "_d_at", "_d_key", "_d_rank", "_seen", "_times", "failure", "message_id", "operation_id",
        "provider_", "recipient", "recipient_domain", "sender", "sender_domain", "tags",
    )  # fmt: skip

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self._seen = b""  # dedupe keys merged so far, 16 bytes each
        self._times = array("q", _NO_TIMES)
        self._counts = array("I", _NO_COUNTS)
        self.failure: Failure | None = None
        # The best-describing event: its order (minus richness, epoch ms, index of its key in _seen)...
        self._d_rank = self._d_at = self._d_key = 0
        # ...and what it says (provider_ None: no email event yet).
        self.provider_: Provider | None = None
        self.operation_id: str | None = None
        self.recipient: str | None = None
        self.recipient_domain: str | None = None
        self.sender: str | None = None
        self.sender_domain: str | None = None
        self.tags: tuple[str, ...] = ()

    @property
    def describing(self) -> Describing | None:
        if self.provider_ is None:
            return None
        return Describing(
            self.provider_, self.operation_id, self.recipient, self.recipient_domain, self.sender,
            self.sender_domain, self.tags,
        )  # fmt: skip

    @property
    def status(self) -> EmailStatus | None:
        times = self._times
        for i, status in _BY_PRECEDENCE:
            if times[i] != _NONE:
                return status
        return None

    @property
    def seen(self) -> frozenset[str]:
        s = self._seen
        return frozenset(s[i : i + _KEY_BYTES].hex() for i in range(0, len(s), _KEY_BYTES))

    @property
    def event_count(self) -> int:
        return len(self._seen) // _KEY_BYTES

    @property
    def first_at(self) -> dict[EmailStatus, datetime]:
        return {s: at for i, s in enumerate(_STATUSES) if (at := _at(self._times[i])) is not None}

    def status_times(self) -> list[datetime | None]:
        """First time of each status in EmailStatus order (None when not seen): the state row's
        *_at columns without building the ``first_at`` dict (the processor's hot path)."""
        times = self._times
        return [None if (ms := times[i]) == _NONE else _EPOCH + _MS * ms for i in _STATUS_IX]

    @property
    def counts(self) -> dict[EmailStatus | EventKind, int]:
        counts = self._counts
        return {b: n for i, b in enumerate(_BUCKETS) if (n := counts[i])}

    @property
    def first_event_at(self) -> datetime | None:
        return _at(self._times[_FIRST_EVENT])

    @property
    def last_event_at(self) -> datetime | None:
        return _at(self._times[_LAST_EVENT])

    @property
    def machine_opens(self) -> int:
        return self._counts[_MACHINE_OPENS]

    @property
    def email_events(self) -> int:
        return self._counts[_EMAIL_EVENTS]

    @property
    def provider(self) -> Provider | None:
        return self.provider_

    @property
    def concerns_email(self) -> bool:
        return self._counts[_EMAIL_EVENTS] > 0

    def _key_at(self, index: int) -> bytes:
        return self._seen[index * _KEY_BYTES : (index + 1) * _KEY_BYTES]

    def _has_seen(self, key: bytes) -> bool:
        seen, at = self._seen, self._seen.find(key)
        while at >= 0:
            if at % _KEY_BYTES == 0:
                return True
            at = seen.find(key, at + 1)
        return False

    def apply(self, event: CanonicalEvent) -> bool:
        """Merge one event; False (and no change) when an equal event was merged before."""
        key = bytes.fromhex(event.dedupe_key)
        if self._has_seen(key):
            return False
        index = len(self._seen) // _KEY_BYTES
        self._seen += key
        times, counts = self._times, self._counts
        at = _ms(event.occurred_at)
        if times[_FIRST_EVENT] == _NONE or at < times[_FIRST_EVENT]:
            times[_FIRST_EVENT] = at
        times[_LAST_EVENT] = max(times[_LAST_EVENT], at)
        if event.kind in NON_EMAIL_KINDS:
            return True
        counts[_EMAIL_EVENTS] += 1
        status = event.status
        counts[_BUCKET_INDEX[status if status is not None else event.kind]] += 1
        if status is not None:
            i = _BUCKET_INDEX[status]
            if times[i] == _NONE or at < times[i]:
                times[i] = at
            if status is EmailStatus.OPENED and event.machine_open:
                counts[_MACHINE_OPENS] += 1
            if status in FAILURE_STATUSES and (
                self.failure is None or order_key(event) < (self.failure.occurred_at, self.failure.dedupe_key)
            ):
                self.failure = Failure.of(event)
        rank = -_richness(event)
        if self.provider_ is None or (rank, at, key) < (self._d_rank, self._d_at, self._key_at(self._d_key)):
            self._d_rank, self._d_at, self._d_key = rank, at, index
            d = Describing.of(event)
            self.provider_, self.operation_id, self.recipient, self.recipient_domain = d[:4]
            self.sender, self.sender_domain, self.tags = d[4:]
        return True

    def row_values(self) -> tuple[Any, ...]:
        """email_state's values in STATE_COLUMNS order with times in epoch ms: processors.rows.state_row
        without building datetimes (the processor's hot path; the driver writes ms as they are)."""
        assert self.provider_ is not None, "no email event merged: no state row"
        times, counts, failure, status, tags = self._times, self._counts, self.failure, self.status, self.tags
        events = len(self._seen) // _KEY_BYTES
        return (
            self.message_id, self.provider_, "" if status is None else status, self.operation_id,
            self.recipient, self.recipient_domain or "", self.sender, self.sender_domain or "",
            dict(zip(tags[::2], tags[1::2], strict=True)),
            *[None if ms == _NONE else ms for ms in times[:_FIRST_EVENT]],
            counts[_OPENED], counts[_MACHINE_OPENS], counts[_CLICKS], counts[_DEFERRALS], events,
            times[_FIRST_EVENT], times[_LAST_EVENT], failure.reason if failure else None,
            failure.bounce_type if failure else None, events,
        )  # fmt: skip

    def count(self, bucket: EmailStatus | EventKind) -> int:
        return self._counts[_BUCKET_INDEX[bucket]]


def fold(message_id: str, events: list[CanonicalEvent]) -> MessageState:
    state = MessageState(message_id)
    for event in events:
        state.apply(event)
    return state
