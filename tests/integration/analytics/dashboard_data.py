"""Known mail for the dashboard tests, loaded through the real store, and what the API must make of it.

Messages spread over the 45 minutes before ``now`` across four recipient domains with different failure
shares; Twilio mail reports SENT, SendGrid mail does not. Two alert transitions (firing, resolved).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from adapters.clickhouse import ClickHouseStore
from schemas.event import CanonicalEvent, Provider, Source, envelope_json
from schemas.status import EmailStatus, EventKind

# domain -> how many of every 10 messages to it bounce (UNDELIVERED) and fail (FAILED)
DOMAINS = {"gmail.example": (0, 0), "yahoo.example": (2, 1), "outlook.example": (1, 0), "aol.example": (3, 2)}
SENDER_DOMAINS = ("shop.example", "news.example")


@dataclass(frozen=True)
class Loaded:
    events: list[CanonicalEvent]
    outcomes: int  # messages with DELIVERED, UNDELIVERED or FAILED (each message has one)
    delivered: int
    alerts: int  # rows in the alerts table


def _event(
    message: str, provider: Provider, status: EmailStatus | None, at: datetime, i: int
) -> CanonicalEvent:
    domain = list(DOMAINS)[i % len(DOMAINS)]
    return CanonicalEvent(
        event_id=f"{message}-{status or 'click'}",
        message_id=message,
        kind=EventKind.STATUS if status else EventKind.CLICK,
        status=status,
        raw_type=(status or "click").lower(),
        occurred_at=at,
        received_at=at + timedelta(seconds=1),
        source=Source.WEBHOOK,
        provider=provider,
        recipient=f"user{i}@{domain}",
        recipient_domain=domain,
        sender=f"hello@{SENDER_DOMAINS[i % 2]}",
        sender_domain=SENDER_DOMAINS[i % 2],
        tags={"campaign": "spring"} if i % 3 else {},
    )


def message_events(i: int, start: datetime) -> list[CanonicalEvent]:
    """The events of message ``i``: queued at start + i*11 s, then its fate a few seconds later."""
    provider = Provider.TWILIO if i % 3 == 0 else Provider.SENDGRID
    message = f"msg-{i:04d}"
    queued = start + timedelta(seconds=11 * i)
    bounces, fails = DOMAINS[list(DOMAINS)[i % len(DOMAINS)]]
    slot = (i // len(DOMAINS)) % 10
    events = [_event(message, provider, EmailStatus.QUEUED, queued, i)]
    if provider is Provider.TWILIO and slot >= fails:  # a failed message was never sent
        events.append(_event(message, provider, EmailStatus.SENT, queued + timedelta(seconds=1), i))
    done = queued + timedelta(seconds=2 + i % 7, milliseconds=37 * (i % 13))
    if slot < fails:
        events.append(_event(message, provider, EmailStatus.FAILED, done, i))
    elif slot < fails + bounces:
        events.append(_event(message, provider, EmailStatus.UNDELIVERED, done, i))
    else:
        events.append(_event(message, provider, EmailStatus.DELIVERED, done, i))
        if i % 2 == 0:
            events.append(_event(message, provider, EmailStatus.OPENED, done + timedelta(seconds=60), i))
            if i % 4 == 0:
                events.append(_event(message, provider, None, done + timedelta(seconds=90), i))
    return events


def load(store: ClickHouseStore, now: datetime, messages: int = 240) -> Loaded:
    """Load ``messages`` messages ending before ``now`` and write two alert rows."""
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=50)
    per_message = [message_events(i, start) for i in range(messages)]
    events = [e for evs in per_message for e in evs]
    store.load([envelope_json(e) for e in events], f"dashboard-{now.isoformat()}")
    statuses = [{e.status for e in evs} for evs in per_message]
    outcomes = sum(
        bool(s & {EmailStatus.DELIVERED, EmailStatus.UNDELIVERED, EmailStatus.FAILED}) for s in statuses
    )
    alert_rows = [
        [now - timedelta(minutes=20), "failure-rate", "failure_rate", "recipient_domain", "aol.example",
         "firing", 0.5, 0.1, 60, 300],
        [now - timedelta(minutes=8), "failure-rate", "failure_rate", "recipient_domain", "aol.example",
         "resolved", 0.04, 0.1, 120, 300],
    ]  # fmt: skip
    store.client.insert(
        f"{store.database}.alerts",
        alert_rows,
        column_names=["at", "rule", "metric", "dimension", "key", "state", "value", "threshold", "volume",
                      "window_s"],
    )  # fmt: skip
    delivered = sum(EmailStatus.DELIVERED in s for s in statuses)
    return Loaded(events, outcomes, delivered, len(alert_rows))


def buckets(times: list[datetime], bucket_s: int) -> int:
    """Distinct epoch-aligned buckets of ``bucket_s`` seconds that these times fall in."""
    return len({int(t.timestamp()) // bucket_s for t in times})


def utcnow() -> datetime:
    return datetime.now(UTC)


def opened_alone_now() -> datetime:
    """A time at most 4 minutes ago for ``load``, such that its data starts 60 s past a 300 s bucket
    boundary: then the last open falls alone into a bucket after its delivery's, so a test that counts
    the dashboard's points per bucket meets that case on every run, not on one run in five."""
    now = utcnow()
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=50)
    back = (int(start.timestamp()) - 60) % 300 // 60  # whole minutes to step back
    return now - timedelta(minutes=back)
