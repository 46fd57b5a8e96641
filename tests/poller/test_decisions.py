"""The poller's pure decisions: transitions only, settledness, reconciliation plans, backoff that honours
Retry-After, the token bucket, retention risk."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.ratelimit import TokenBucket
from adapters.retry import Backoff, parse_retry_after
from poller.decisions import (
    Mark,
    RetentionRisk,
    observe_emails,
    observe_operation,
    plan_reconcile,
    retention_risk,
    settled,
    to_ms,
)
from schemas.event import Source
from schemas.status import EmailStatus

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)


def resource(email_id: str, status: str, updated_s: float, **extra: Any) -> dict[str, Any]:
    at = (T0 + timedelta(seconds=updated_s)).isoformat().replace("+00:00", "Z")
    return {
        "id": email_id,
        "status": status,
        "updatedAt": at,
        "createdAt": T0.isoformat(),
        "operationId": "comms_operation_1",
        "to": [{"address": "Ana@Example.com"}],
        "from": {"address": "news@acme-shop.com"},
        **extra,
    }


def test_only_transitions_not_published_before_are_published() -> None:
    first = observe_emails([resource("e1", "QUEUED", 0), resource("e2", "SENT", 1)], {}, NOW)
    assert [(e.message_id, e.status) for e in first.events] == [
        ("e1", EmailStatus.QUEUED),
        ("e2", EmailStatus.SENT),
    ]
    event = first.events[0]
    assert event.source is Source.POLLER and event.occurred_at == T0 and event.recipient == "ana@example.com"
    known = {m.id: m for m in first.marks}
    again = observe_emails([resource("e1", "QUEUED", 0), resource("e2", "DELIVERED", 5)], known, NOW)
    assert [(e.message_id, e.status) for e in again.events] == [("e2", EmailStatus.DELIVERED)]
    known = {m.id: m for m in again.marks}
    stale = observe_emails([resource("e2", "SENT", 1)], known, NOW)  # an older read changes nothing
    assert stale.events == [] and stale.marks == [known["e2"]]


def test_a_created_at_without_offset_is_utc_in_any_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    naive = T0.replace(tzinfo=None).isoformat()
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        [mark] = observe_emails([resource("e1", "QUEUED", 0, createdAt=naive)], {}, NOW).marks
    finally:
        monkeypatch.undo()
        time.tzset()
    assert mark.created_ms == to_ms(T0)


def test_event_ids_are_stable_across_polls() -> None:
    a = observe_emails([resource("e1", "SENT", 1)], {}, NOW).events[0]
    b = observe_emails([resource("e1", "SENT", 1)], {}, NOW + timedelta(hours=1)).events[0]
    assert a.event_id == b.event_id and a.dedupe_key == b.dedupe_key


def test_bad_resources_are_rejected_not_dropped() -> None:
    out = observe_emails([{"id": "e1", "status": "SENT"}, "nonsense", resource("e3", "SENT", 1)], {}, NOW)
    assert [r.index for r in out.rejected] == [0, 1]
    assert out.rejected[0].problems == [
        {"field": "updatedAt", "message": "an Email resource needs updatedAt"}
    ]
    assert [e.message_id for e in out.events] == ["e3"]


def test_operations_publish_their_status_changes() -> None:
    raw = {"id": "op1", "status": "PROCESSING", "updatedAt": T0.isoformat(), "createdAt": T0.isoformat()}
    first = observe_operation(raw, None, NOW)
    assert [e.raw_type for e in first.events] == ["com.twilio.comms-api.operation.processing"]
    assert observe_operation(raw, first.marks[0], NOW).events == []
    done = {**raw, "status": "COMPLETED", "updatedAt": (T0 + timedelta(seconds=3)).isoformat()}
    assert [e.raw_type for e in observe_operation(done, first.marks[0], NOW).events] == [
        "com.twilio.comms-api.operation.completed"
    ]


def test_settled_statuses_cannot_change_any_more() -> None:
    def mark(status: EmailStatus) -> Mark:
        return Mark("e", status.value, 0, 0)

    assert {s for s in EmailStatus if settled(mark(s))} == {
        EmailStatus.OPENED,
        EmailStatus.UNDELIVERED,
        EmailStatus.FAILED,
        EmailStatus.CANCELED,
        EmailStatus.INBOUND,
    }


def test_reconciliation_lists_per_operation_fetches_the_rest_and_drops_the_expired() -> None:
    recent, old = to_ms(NOW - timedelta(days=1)), to_ms(NOW - timedelta(days=8))
    due = [
        Mark("e1", "SENT", recent, recent, "op1"),
        Mark("e2", "DELIVERED", recent, recent, "op1"),
        Mark("e3", "QUEUED", recent, recent, "op2"),
        Mark("e4", "SENT", recent, recent, None),
        Mark("e5", "SENT", old, old, "op3"),
    ]
    plan = plan_reconcile(due, NOW)
    assert plan.by_operation == {"op1": ["e1", "e2"], "op2": ["e3"]}
    assert plan.single == ["e4"] and plan.expired == ["e5"]


@settings(max_examples=300, deadline=None)
@given(
    attempt=st.integers(1, 10),
    retry_after=st.one_of(st.none(), st.floats(0, 120)),
    seed=st.integers(0, 2**32),
)
def test_backoff_never_retries_before_retry_after_and_is_bounded(
    attempt: int, retry_after: float | None, seed: int
) -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0)
    delay = backoff.delay(attempt, retry_after, random.Random(seed))
    if retry_after is None:
        assert 0 <= delay <= min(30.0, 0.5 * 2 ** (attempt - 1))
    else:
        assert retry_after <= delay <= retry_after + 0.5


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert parse_retry_after("3", NOW) == 3.0
    assert parse_retry_after("Tue, 24 Nov 2026 10:00:07 GMT", NOW) == 7.0
    assert parse_retry_after("Tue, 24 Nov 2026 09:00:00 GMT", NOW) == 0.0
    assert parse_retry_after(None, NOW) is None and parse_retry_after("soon", NOW) is None


@settings(max_examples=100, deadline=None)
@given(rate=st.floats(1, 500), burst=st.integers(1, 50), takes=st.integers(1, 200))
def test_the_bucket_spaces_reservations_at_its_rate(rate: float, burst: int, takes: int) -> None:
    now = [0.0]
    bucket = TokenBucket(rate, burst, lambda: now[0])
    waits = [bucket.reserve() for _ in range(takes)]
    assert waits == sorted(waits)
    assert sum(1 for w in waits if w == 0) == min(burst, takes)
    assert abs(waits[-1] - max(0, takes - burst) / rate) < 1e-6
    limiter = TokenBucket(rate, burst, lambda: now[0])
    granted = sum(limiter.try_take() == 0 for _ in range(takes))
    assert granted == min(burst, takes)
    now[0] += 1.0
    assert limiter.try_take() == 0.0 or rate < 1


def test_retention_risk() -> None:
    warn = timedelta(days=6)
    assert retention_risk(timedelta(hours=1), warn) is RetentionRisk.OK
    assert retention_risk(timedelta(days=6, hours=1), warn) is RetentionRisk.WARN
    assert retention_risk(timedelta(days=7), warn) is RetentionRisk.LOST
