"""Generated mail with a known answer: each message's dimensions and event times are decided here, loaded
through the real store (duplicated rows, replays, stale and newer state versions), and every metric of
api.md is computed independently from the same plan, in plain Python.

The plan puts events just before, inside and just after the queried range, gives some messages two
DELIVERED events (webhook and poller times differ; the first counts), bounces after delivery (a message in
DELIVERED and UNDELIVERED counts once among outcomes), mail without QUEUED (start = SENT) or without any
start (no time to deliver), repeated opens and clicks, and several tags per message; spam reports,
unsubscribes, deferrals, blocks and bounce classifications, to recipient domains of known mailbox
providers and others.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.clickhouse import ClickHouseStore
from analytics.queries import ESTIMATOR
from schemas.event import CanonicalEvent, Provider, Source, envelope_json
from schemas.status import EmailStatus, EventKind

FROM = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TO = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SENDERS = ("shop.example", "news.example", "bills.example")
RECIPIENTS = ("gmail.com", "yahoo.com", "outlook.com", "aol.example", "tiny.example", "me.com")
# The mailbox provider of each recipient domain, written out (not taken from schemas.mailbox_providers).
MAILBOX_PROVIDER = {
    "gmail.com": "google",
    "yahoo.com": "yahoo",
    "outlook.com": "microsoft",
    "me.com": "apple",
}
CLASSIFICATIONS = ("Invalid Address", "Reputation", "Content", "Mailbox Unavailable")
TAGSETS: tuple[dict[str, str], ...] = ({}, {"campaign": "a"}, {"campaign": "b", "env": "prod"})
KINDS = {
    "CLICK": EventKind.CLICK,
    "DEFERRED": EventKind.DEFERRED,
    "SPAMREPORT": EventKind.SPAM_REPORT,
    "UNSUBSCRIBE": EventKind.UNSUBSCRIBE,
}


@dataclass
class Message:
    id: str
    provider: str
    sender_domain: str
    recipient_domain: str
    tags: dict[str, str]
    events: list[tuple[str, datetime]] = field(default_factory=list)  # (STATUS or KIND, time)
    blocked: bool = False  # its UNDELIVERED events are blocks
    classification: str | None = None  # of its UNDELIVERED events

    @property
    def mailbox_provider(self) -> str:
        return MAILBOX_PROVIDER.get(self.recipient_domain, "other")

    def first(self, status: str) -> datetime | None:
        times = [t for s, t in self.events if s == status]
        return min(times) if times else None


def _ms(rng: random.Random, low: int, high: int) -> timedelta:
    return timedelta(milliseconds=rng.randint(low, high))


def plan(messages: int = 600, seed: int = 6) -> list[Message]:
    rng = random.Random(seed)
    signals = random.Random(seed + 1)  # its own draws: the rest of the plan is as without signals
    out = []
    for i in range(messages):
        m = Message(
            id=f"ka-{i:05d}",
            provider="twilio" if i % 3 == 0 else "sendgrid",
            sender_domain=SENDERS[i % len(SENDERS)],
            recipient_domain=rng.choices(RECIPIENTS, weights=(30, 20, 20, 10, 3, 1))[0],
            tags=TAGSETS[rng.randrange(len(TAGSETS))],
        )
        # Starts from 20 min before the range to 10 min after it: outcomes straddle both edges.
        t0 = FROM - timedelta(minutes=20) + _ms(rng, 0, 150 * 60_000)
        if i % 10:
            m.events.append(("QUEUED", t0))
        if m.provider == "twilio" and i % 7:
            m.events.append(("SENT", t0 + _ms(rng, 50, 900)))
        if rng.random() < 0.05:
            m.events.append(("DEFERRED", t0 + _ms(rng, 100, 500)))
        fate = rng.random()
        done = t0 + _ms(rng, 200, 20 * 60_000)
        if fate < 0.70:
            m.events.append(("DELIVERED", done))
            if rng.random() < 0.1:  # the poller saw it later: a second, later DELIVERED event
                m.events.append(("DELIVERED", done + _ms(rng, 1, 5000)))
            if rng.random() < 0.45:
                opened = done + _ms(rng, 1000, 40 * 60_000)
                m.events.append(("OPENED", opened))
                if rng.random() < 0.3:
                    m.events.append(("OPENED", opened + _ms(rng, 1, 60_000)))
                if rng.random() < 0.3:
                    m.events.append(("CLICK", opened + _ms(rng, 1, 60_000)))
        elif fate < 0.85:
            if rng.random() < 0.2:  # accepted, then bounced
                m.events.append(("DELIVERED", done - _ms(rng, 1, 100)))
            m.events.append(("UNDELIVERED", done))
        elif fate < 0.93:
            m.events.append(("FAILED", done))
        elif fate < 0.97 and m.provider == "sendgrid":  # canceled before it went out
            m.events.append(("CANCELED", done))
        _signals(m, signals, done)
        if m.events:
            out.append(m)
    # Exact edges: events at the first and last millisecond inside, and at the first one outside.
    out[1].events.append(("DELIVERED", FROM))
    out[2].events.append(("FAILED", TO - timedelta(milliseconds=1)))
    out[4].events.append(("UNDELIVERED", TO))
    return out


def _signals(m: Message, rng: random.Random, done: datetime) -> None:
    """Spam reports and unsubscribes after delivery, blocks and classifications of bounces."""
    names = {name for name, _ in m.events}
    if "DELIVERED" in names and rng.random() < 0.08:
        m.events.append(("SPAMREPORT", done + _ms(rng, 1000, 30 * 60_000)))
    if "DELIVERED" in names and rng.random() < 0.05:
        m.events.append(("UNSUBSCRIBE", done + _ms(rng, 1000, 30 * 60_000)))
    if "UNDELIVERED" in names:
        m.blocked = rng.random() < 0.4
        m.classification = rng.choice(CLASSIFICATIONS) if rng.random() < 0.9 else None


def canonical(m: Message) -> list[CanonicalEvent]:
    events = []
    for n, (name, at) in enumerate(m.events):
        kind = KINDS.get(name, EventKind.STATUS)
        events.append(
            CanonicalEvent(
                event_id=f"{m.id}-{n}",
                message_id=m.id,
                kind=kind,
                status=None if name in KINDS else EmailStatus(name),
                raw_type="blocked" if name == "UNDELIVERED" and m.blocked else name.lower(),
                occurred_at=at,
                received_at=at + timedelta(seconds=2),
                source=Source.WEBHOOK,
                provider=Provider(m.provider),
                recipient=f"{m.id}@{m.recipient_domain}",
                recipient_domain=m.recipient_domain,
                sender=f"hello@{m.sender_domain}",
                sender_domain=m.sender_domain,
                tags=m.tags,
                machine_open=False if name == "OPENED" else None,
                bounce_type=("blocked" if m.blocked else "bounce") if name == "UNDELIVERED" else None,
                bounce_classification=m.classification if name == "UNDELIVERED" else None,
            )
        )
    return events


def load(store: ClickHouseStore, messages: list[Message]) -> None:
    """Events with retries (same event under a new id) and a whole replay (another token: every row
    physically twice), loaded as the processor loads them; ClickHouse merges the message states."""
    per_message = [canonical(m) for m in messages]
    events: list[CanonicalEvent] = []
    for evs in per_message:
        events += evs
        events += [e.model_copy(update={"event_id": e.event_id + "-retry"}) for e in evs[:1]]
    values = [envelope_json(e) for e in events]
    store.load(values[: len(values) // 2], "batch-1")
    store.load(values[len(values) // 2 :], "batch-2")
    store.load(values, "batch-3-replay")


# ---------------------------------------------------------------- the expected answers, from the plan


def _matches(m: Message, filters: dict[str, str]) -> bool:
    for name, value in filters.items():
        if name == "tag":
            key, _, tag_value = value.partition("=")
            if m.tags.get(key) != tag_value:
                return False
        elif getattr(m, name) != value:
            return False
    return True


# The definitions of docs/figures.md, written out here (not taken from schemas.outcomes).
FINAL_FIRST = ("OPENED", "UNDELIVERED", "DELIVERED", "SENT", "FAILED", "CANCELED", "QUEUED", "SCHEDULED")
CLASS_OF = {"OPENED": "delivered", "DELIVERED": "delivered", "UNDELIVERED": "bounced", "FAILED": "failed",
            "CANCELED": "canceled"}  # fmt: skip
REACHED_QUEUED = {"QUEUED", "FAILED", "SENT", "UNDELIVERED", "DELIVERED", "OPENED"}
REACHED_SENT = {"SENT", "UNDELIVERED", "DELIVERED", "OPENED"}


def figures(finals: Iterable[tuple[str | None, set[str]]]) -> dict[str, Any]:
    """The figures of messages given as (final status, the other event kinds it has: CLICK, SPAMREPORT,
    UNSUBSCRIBE, BLOCKED, DEFERRED), as the API gives them."""
    classes = dict.fromkeys(("delivered", "bounced", "failed", "canceled"), 0)
    pending = opened = clicked = queued = sent = 0
    signals = dict.fromkeys(("spam_reported", "unsubscribed", "blocked", "deferred"), 0)
    for final, kinds in finals:
        click = "CLICK" in kinds
        if final is None:
            continue
        if final in CLASS_OF:
            classes[CLASS_OF[final]] += 1
        else:
            pending += 1
        delivered = CLASS_OF.get(final) == "delivered"
        opened += delivered and (final == "OPENED" or click)
        clicked += delivered and click
        queued += final in REACHED_QUEUED
        sent += final in REACHED_SENT
        signals["spam_reported"] += delivered and "SPAMREPORT" in kinds
        signals["unsubscribed"] += delivered and "UNSUBSCRIBE" in kinds
        signals["blocked"] += final == "UNDELIVERED" and "BLOCKED" in kinds
        signals["deferred"] += final in REACHED_SENT and "DEFERRED" in kinds
    outcomes = sum(classes.values())

    def ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    return {
        "messages": outcomes,
        "pending": pending,
        "counts": {**classes, "opened": opened, "clicked": clicked, **signals},
        "rates": {
            **{name: ratio(n, outcomes) for name, n in classes.items()},
            "failure": ratio(classes["bounced"] + classes["failed"], outcomes),
            "opened": ratio(opened, classes["delivered"]),
            "clicked": ratio(clicked, classes["delivered"]),
            "spam": ratio(signals["spam_reported"], classes["delivered"]),
            "unsubscribe": ratio(signals["unsubscribed"], classes["delivered"]),
            "block": ratio(signals["blocked"], outcomes),
            "deferral": ratio(signals["deferred"], sent),
        },
        "funnel": [
            ["QUEUED", queued],
            ["SENT", sent],
            ["DELIVERED", classes["delivered"]],
            ["OPENED", opened],
            ["CLICKED", clicked],
        ],
    }


def _counts(messages: Iterable[Message], start: datetime, end: datetime) -> dict[str, Any]:
    """Volumes (distinct messages per status or kind with an event in range) and the figures of each
    message's final status among its events in range."""
    sets: dict[str, set[str]] = defaultdict(set)
    finals = []
    for m in messages:
        seen = {name for name, at in m.events if start <= at < end}
        if "UNDELIVERED" in seen and m.blocked:
            seen.add("BLOCKED")
        for name in seen:
            sets[name].add(m.id)
        finals.append((next((s for s in FINAL_FIRST if s in seen), None), seen))
    volumes = dict.fromkeys(
        ("SCHEDULED", "QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "OPENED", "FAILED", "CANCELED", "CLICK"),
        0,
    )
    volumes |= {name: len(ids) for name, ids in sets.items()}
    return {"volumes": volumes, **figures(finals)}


def quantile(values: list[int], level: float) -> float:
    """Linear interpolation between order statistics (Hyndman-Fan type 7, numpy's default)."""
    ordered = sorted(values)
    h = (len(ordered) - 1) * level
    low = int(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def _percentiles(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "count": 0}
    return {
        **{f"p{round(lv * 100)}": pytest.approx(quantile(values, lv), rel=1e-12) for lv in (0.5, 0.95, 0.99)},
        "count": len(values),
    }


def _ms_between(a: datetime, b: datetime) -> int:
    return round((b - a) / timedelta(milliseconds=1))


def deliver_times(messages: Iterable[Message], start: datetime, end: datetime) -> dict[datetime, list[int]]:
    """Per delivered minute's bucket start (caller buckets): delivered time -> duration, first times only."""
    out: dict[datetime, list[int]] = defaultdict(list)
    for m in messages:
        delivered, begun = m.first("DELIVERED"), m.first("SENT") or m.first("QUEUED")
        if delivered and begun and start <= delivered < end:
            out[delivered].append(_ms_between(begun, delivered))
    return out


def open_times(messages: Iterable[Message], start: datetime, end: datetime) -> list[int]:
    out = []
    for m in messages:
        opened, delivered = m.first("OPENED"), m.first("DELIVERED")
        if opened and delivered and start <= opened < end:
            out.append(_ms_between(delivered, opened))
    return out


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _bucket(t: datetime, seconds: int) -> datetime:
    epoch = int(t.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def summary(plan: list[Message], filters: dict[str, str], start: datetime = FROM, end: datetime = TO) -> Any:
    chosen = [m for m in plan if _matches(m, filters)]
    deliver = [d for ds in deliver_times(chosen, start, end).values() for d in ds]
    return {
        "from": iso(start),
        "to": iso(end),
        "filters": filters,
        **_counts(chosen, start, end),
        "time_to_deliver_ms": {**_percentiles(deliver), "estimator": ESTIMATOR},
        "time_to_open_ms": {**_percentiles(open_times(chosen, start, end)), "estimator": ESTIMATOR},
    }


def _buckets(start: datetime, end: datetime, seconds: int) -> list[datetime]:
    return [
        start + timedelta(seconds=seconds * n) for n in range(int((end - start).total_seconds()) // seconds)
    ]


def timeseries(plan: list[Message], filters: dict[str, str], bucket: int) -> Any:
    chosen = [m for m in plan if _matches(m, filters)]
    points = []
    for t in _buckets(FROM, TO, bucket):
        counts = _counts(chosen, t, t + timedelta(seconds=bucket))
        if any(counts["volumes"].values()):
            points.append({"t": iso(t), **counts})
    return {"from": iso(FROM), "to": iso(TO), "filters": filters, "bucket_s": bucket, "points": points}


def latency(plan: list[Message], filters: dict[str, str], bucket: int) -> Any:
    chosen = [m for m in plan if _matches(m, filters)]
    points = []
    for t in _buckets(FROM, TO, bucket):
        found = deliver_times(chosen, t, t + timedelta(seconds=bucket))
        values = [d for ds in found.values() for d in ds]
        if values:
            points.append({"t": iso(t), "time_to_deliver_ms": _percentiles(values)})
    return {
        "from": iso(FROM), "to": iso(TO), "filters": filters, "bucket_s": bucket, "estimator": ESTIMATOR,
        "points": points,
    }  # fmt: skip


def _keys(m: Message, by: str, start: datetime, end: datetime) -> list[str]:
    if by == "tag":
        return [f"{k}={v}" for k, v in m.tags.items()] or [""]
    if by == "bounce_classification":  # the classification of its bounce in range, else ''
        bounced = any(name == "UNDELIVERED" and start <= at < end for name, at in m.events)
        return [m.classification or "" if bounced else ""]
    return [getattr(m, by)]


def breakdown(
    plan: list[Message],
    filters: dict[str, str],
    by: str,
    order: str,
    limit: int,
    min_volume: int,
    start: datetime = FROM,
    end: datetime = TO,
) -> Any:
    chosen = [m for m in plan if _matches(m, filters)]
    keys = sorted({k for m in chosen for k in _keys(m, by, start, end)})
    rows = []
    for key in keys:
        counts = _counts([m for m in chosen if key in _keys(m, by, start, end)], start, end)
        if any(counts["volumes"].values()) and counts["messages"] >= min_volume:
            rows.append({"key": key, **counts})

    def metric(row: dict[str, Any]) -> float | None:
        return float(row["messages"]) if order == "messages" else row["rates"][order]

    # Descending by the metric, nulls last, ties by key (ascending).
    rows.sort(key=lambda r: (metric(r) is None, -(metric(r) or 0), r["key"]))
    window = {"from": iso(start), "to": iso(end), "filters": filters}
    return {**window, "by": by, "order": order, "rows": rows[:limit]}


def funnel(plan: list[Message], filters: dict[str, str]) -> Any:
    stages = _counts([m for m in plan if _matches(m, filters)], FROM, TO)["funnel"]
    steps = [{"stage": stage, "messages": n} for stage, n in stages]
    return {"from": iso(FROM), "to": iso(TO), "filters": filters, "rule": FUNNEL_RULE, "steps": steps}


FUNNEL_RULE = (
    "each message counts at every stage it reached at least, judged from its final status: "
    "a DELIVERED message has passed QUEUED and SENT"
)
