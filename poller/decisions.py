"""The poller's decisions, apart from any I/O: what to publish, when to retry, what to re-poll. Pure.

- **Transitions only.** A listed Email (or Operation) resource is published when the poller has not
  published its current ``(status, updatedAt)`` before; one that is older than what was published
  (a stale read) is ignored. Events carry ``source=poller``, the resource's ``updatedAt`` as event
  time and an id derived from (id, status, updatedAt): webhook and poller reports of one status
  share a dedupe key downstream.
- **Settled emails** (``schemas.status.SETTLED_STATUSES``) cannot change any more. Every
  other email (DELIVERED included: opens and late bounces follow) is re-polled once it has not been
  looked at for ``reconcile_after``, until it settles or leaves the API's 7-day retention.
- **Backoff.** 429 and 5xx are retried: never before ``Retry-After``, else exponential with full jitter.
- **Rate.** ``adapters.ratelimit.TokenBucket`` spaces requests (the adapter bounds concurrency).
- **Retention.** The checkpoint lag (API time now minus the high-water mark of listed emails) is watched:
  past ``warn_after`` the poller warns; past the retention, emails created in the gap are lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from schemas.event import CanonicalEvent
from schemas.problems import InvalidEvent
from schemas.status import SETTLED_STATUSES
from schemas.twilio import parse_email_resource, parse_operation_resource

RETENTION = timedelta(days=7)


def to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


@dataclass(frozen=True, slots=True)
class Mark:
    """What the poller last published about one email or operation (a checkpoint row)."""

    id: str
    status: str
    updated_ms: int
    created_ms: int
    operation_id: str | None = None

    def supersedes(self, previous: Mark | None) -> bool:
        """True when this observation is a transition not published before."""
        if previous is None or self.updated_ms > previous.updated_ms:
            return True
        return self.updated_ms == previous.updated_ms and self.status != previous.status


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    payload: Any
    problems: list[dict[str, str]]


@dataclass(slots=True)
class Observed:
    """What one listed page (or fetched resource) means for Kafka and for the checkpoint."""

    events: list[CanonicalEvent] = field(default_factory=list)  # to publish, in page order
    marks: list[Mark] = field(default_factory=list)  # to store: every valid resource seen
    rejected: list[Rejection] = field(default_factory=list)  # to the dead-letter topic

    @property
    def newest_created_ms(self) -> int | None:
        return max((m.created_ms for m in self.marks), default=None)


def _created_ms(raw: dict[str, Any], fallback: datetime) -> int:
    text = raw.get("createdAt")
    try:
        created = datetime.fromisoformat(text) if isinstance(text, str) else fallback
        # Without an offset it is UTC (as everywhere in mailpulse), not this machine's zone.
        return to_ms(created if created.tzinfo else created.replace(tzinfo=UTC))
    except (ValueError, OverflowError):
        return to_ms(fallback)


def observe_emails(resources: Sequence[Any], known: Mapping[str, Mark], received_at: datetime) -> Observed:
    """Which listed Email resources are transitions to publish, and what the checkpoint keeps."""
    out = Observed()
    for index, raw in enumerate(resources):
        try:
            event = parse_email_resource(raw, received_at)
        except InvalidEvent as exc:
            problems = [{"field": p.field, "message": p.message} for p in exc.problems]
            out.rejected.append(Rejection(index, raw, problems))
            continue
        mark = Mark(
            id=event.message_id,
            status=event.raw_type,
            updated_ms=to_ms(event.occurred_at),
            created_ms=_created_ms(raw, event.occurred_at),
            operation_id=event.operation_id,
        )
        previous = known.get(mark.id)
        if mark.supersedes(previous):
            out.events.append(event)
            out.marks.append(mark)
        else:
            assert previous is not None
            out.marks.append(replace(previous, operation_id=previous.operation_id or mark.operation_id))
    return out


def observe_operation(raw: Any, known: Mark | None, received_at: datetime) -> Observed:
    """The same for one Operation resource."""
    out = Observed()
    try:
        event = parse_operation_resource(raw, received_at)
    except InvalidEvent as exc:
        problems = [{"field": p.field, "message": p.message} for p in exc.problems]
        out.rejected.append(Rejection(0, raw, problems))
        return out
    status = str(raw["status"])
    mark = Mark(event.message_id, status, to_ms(event.occurred_at), _created_ms(raw, event.occurred_at))
    if mark.supersedes(known):
        out.events.append(event)
        out.marks.append(mark)
    else:
        assert known is not None
        out.marks.append(known)
    return out


def settled(mark: Mark) -> bool:
    return mark.status in SETTLED_STATUSES


@dataclass(frozen=True, slots=True)
class ReconcilePlan:
    """Due unsettled emails: listed per operation (pages of up to 1,000), else fetched one by one."""

    by_operation: dict[str, list[str]]
    single: list[str]
    expired: list[str]  # older than the retention: the API no longer has them


def plan_reconcile(due: Sequence[Mark], api_now: datetime, retention: timedelta = RETENTION) -> ReconcilePlan:
    oldest = to_ms(api_now - retention)
    by_operation: dict[str, list[str]] = {}
    single, expired = [], []
    for mark in due:
        if mark.created_ms < oldest:
            expired.append(mark.id)
        elif mark.operation_id:
            by_operation.setdefault(mark.operation_id, []).append(mark.id)
        else:
            single.append(mark.id)
    return ReconcilePlan(by_operation, single, expired)


class RetentionRisk(StrEnum):
    OK = "ok"
    WARN = "warn"  # the poller is getting close to losing data
    LOST = "lost"  # emails created between the mark and the retention horizon are gone


def retention_risk(lag: timedelta, warn_after: timedelta, retention: timedelta = RETENTION) -> RetentionRisk:
    if lag >= retention:
        return RetentionRisk.LOST
    return RetentionRisk.WARN if lag >= warn_after else RetentionRisk.OK
