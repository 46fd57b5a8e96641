"""The alert measurements on real chDB: a hand-counted answer, then generated traffic against the
definitions (outcome by final status, docs/figures.md) computed in Python from the events themselves."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pytest

from adapters.clickhouse import ClickHouseStore
from alerting.evaluate import Evaluator
from alerting.query import counts_from_rows, rates_query, window
from alerting.state_machine import Sample
from schemas.alert_rules import AlertRule, Dimension
from schemas.event import CanonicalEvent, Provider, Source, envelope_json
from schemas.status import EmailStatus, EventKind

pytestmark = [pytest.mark.clickhouse]

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FINAL_FIRST = ("OPENED", "UNDELIVERED", "DELIVERED", "FAILED", "QUEUED")


class Counts(NamedTuple):
    outcomes: int
    failures: int  # bounced + failed
    bounced: int


def event(
    message: str,
    status: str,
    at: datetime,
    sender: str,
    provider: str = "twilio",
    recipient: str = "mail.example",
    **tags: str,
) -> CanonicalEvent:
    """A status (upper-case) or another event kind; ``BLOCKED`` is an UNDELIVERED of raw type blocked."""
    blocked = status == "BLOCKED"
    status = "UNDELIVERED" if blocked else status
    kind = EventKind.STATUS if status in EmailStatus.__members__ else EventKind(status.lower())
    return CanonicalEvent(
        event_id=f"{message}-{status}-{at.timestamp()}",
        message_id=message,
        kind=kind,
        status=EmailStatus(status) if kind is EventKind.STATUS else None,
        raw_type="blocked" if blocked else status.lower(),
        occurred_at=at,
        received_at=at,
        source=Source.WEBHOOK,
        provider=Provider(provider),
        recipient_domain=recipient,
        sender_domain=sender,
        tags=tags,
    )


def load(store: ClickHouseStore, events: list[CanonicalEvent]) -> None:
    values = [envelope_json(e) for e in events]
    store.load(values, "alerts-a")
    store.load(values, "alerts-b")  # every row physically twice: states must not double


def at(minutes: int, seconds: int = 0) -> datetime:
    return NOON + timedelta(minutes=minutes, seconds=seconds)


def counts(store: ClickHouseStore, by: Dimension, now: datetime, window_s: int = 300) -> dict[str, Counts]:
    sql, params = rates_query(store.database, by, *window(now, window_s))
    figures = counts_from_rows(store.query(sql, params))
    return {k: Counts(f.outcomes, f.numerator("failure"), f.bounced) for k, f in figures.items()}


def test_hand_counted_window(store: ClickHouseStore) -> None:
    shop, other = "shop.example", "other.example"
    load(
        store,
        [
            event("a1", "QUEUED", at(4, 50), shop, campaign="x"),
            event("a1", "DELIVERED", at(5, 10), shop, campaign="x"),
            event("a2", "DELIVERED", at(6), shop),
            event("a2", "UNDELIVERED", at(7), shop),  # a bounce after delivery: one outcome, bounced
            event("a3", "FAILED", at(9, 59), shop),
            event("a3", "CLICK", at(9, 59), shop),  # not a status: ignored
            event("a4", "UNDELIVERED", at(10), shop),  # minute 12:10 is the end: outside
            event("a5", "UNDELIVERED", at(4, 59), shop),  # minute 12:04: outside
            event("a6", "QUEUED", at(6), shop),  # in flight: not an outcome
            event("a7", "QUEUED", at(6), shop),
            event("a7", "CANCELED", at(8), shop),  # an outcome, not a failure
            event("b1", "DELIVERED", at(8), other, "sendgrid", campaign="x", team="y"),
            event("b2", "UNDELIVERED", at(8, 30), other, "sendgrid", "mail.example", campaign="x"),
        ],
    )
    now = at(10)
    assert counts(store, "sender_domain", now) == {shop: Counts(4, 2, 1), other: Counts(2, 1, 1)}
    assert counts(store, "", now) == {"": Counts(6, 3, 2)}
    assert counts(store, "tag", now) == {"campaign=x": Counts(3, 1, 1), "team=y": Counts(1, 0, 0)}
    assert counts(store, "provider", now) == {"sendgrid": Counts(2, 1, 1), "twilio": Counts(4, 2, 1)}
    assert counts(store, "", at(30)) == {}

    rules = (
        AlertRule(name="f", metric="failure_rate", threshold=0.5, by="sender_domain"),
        AlertRule(name="b", metric="bounce_rate", threshold=0.5, by="sender_domain"),
        AlertRule(name="all", metric="failure_rate", threshold=0.5, window_s=600),
    )
    measured = Evaluator(store.query, store.database).measure(rules, now)
    assert measured == {
        "f": {shop: Sample(2 / 4, 4), other: Sample(0.5, 2)},
        "b": {shop: Sample(1 / 4, 4), other: Sample(0.5, 2)},
        "all": {"": Sample(4 / 7, 7)},  # 12:00..12:10 also holds a5
    }


def test_generated_traffic_matches_the_definitions(store: ClickHouseStore) -> None:
    rng = random.Random(6)
    events: list[CanonicalEvent] = []
    domains, tags = ["a.example", "b.example", "c.example"], ["t=1", "t=2", "u=1"]
    for n in range(600):
        sender = rng.choice(domains)
        mine = dict(tag.split("=") for tag in rng.sample(tags, rng.randint(0, 2)))
        start = NOON + timedelta(seconds=rng.randint(0, 1800))
        for status in rng.sample(
            ["QUEUED", "DELIVERED", "UNDELIVERED", "FAILED", "OPENED"], rng.randint(1, 3)
        ):
            when = start + timedelta(seconds=rng.randint(0, 400))
            events.append(event(f"m{n}", status, when, sender, rng.choice(["twilio", "sendgrid"]), **mine))
    load(store, events)

    for now, window_s in [(at(10), 300), (at(20, 30), 600), (at(33), 120)]:
        start, end = now - timedelta(seconds=window_s), now
        dims: tuple[Dimension, ...] = ("", "sender_domain", "provider", "tag")
        for by in dims:
            sets: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
            for e in events:
                minute = e.occurred_at.replace(second=0, microsecond=0)
                if not (start <= minute < end) or e.status is None:
                    continue
                keys = {
                    "": [""],
                    "sender_domain": [e.sender_domain or ""],
                    "provider": [e.provider.value],
                    "tag": [f"{k}={v}" for k, v in e.tags.items()],
                }[by]
                for key in keys:
                    sets[key][e.status.value].add(e.message_id)
            expected = {}
            for key, by_status in sets.items():
                seen: dict[str, set[str]] = defaultdict(set)
                for status, ids in by_status.items():
                    for mid in ids:
                        seen[mid].add(status)
                # Final status: the first of these a message has seen (written out, not imported).
                finals = [next(s for s in FINAL_FIRST if s in statuses) for statuses in seen.values()]
                outcomes = sum(f in ("OPENED", "DELIVERED", "UNDELIVERED", "FAILED") for f in finals)
                if outcomes:
                    failures = sum(f in ("UNDELIVERED", "FAILED") for f in finals)
                    expected[key] = Counts(outcomes, failures, finals.count("UNDELIVERED"))
            got = counts(store, by, now, window_s)
            assert got == expected, (now, window_s, by)
            assert sum(c.outcomes for c in got.values()) > 0


def test_signal_metrics_per_mailbox_provider(store: ClickHouseStore) -> None:
    """Spam, block and deferral rates per mailbox provider, hand-counted; min_volume reads each rate's
    denominator (delivered for spam, outcomes for blocks, reached SENT for deferrals)."""
    shop = "shop.example"
    gmail = [
        e
        for n in range(4)
        for e in (
            event(f"g{n}", "DELIVERED", at(5), shop, "sendgrid", "gmail.com"),
            *([event(f"g{n}", "SPAMREPORT", at(6), shop, "sendgrid", "gmail.com")] if n < 2 else []),
            *([event(f"g{n}", "DEFERRED", at(5), shop, "sendgrid", "gmail.com")] if n == 3 else []),
        )
    ]
    yahoo = [
        event("y1", "DELIVERED", at(5), shop, "sendgrid", "yahoo.co.uk"),
        event("y2", "BLOCKED", at(5), shop, "sendgrid", "aol.com"),
        event("y3", "UNDELIVERED", at(5), shop, "sendgrid", "ymail.com"),
        event("y4", "DEFERRED", at(5), shop, "sendgrid", "yahoo.com"),  # never reached SENT: not counted
        event("y4", "QUEUED", at(5), shop, "sendgrid", "yahoo.com"),
        event("y5", "SPAMREPORT", at(5), shop, "sendgrid", "yahoo.com"),  # not delivered in range: no
    ]
    elsewhere = [event("o1", "DELIVERED", at(5), shop, "sendgrid", "example.org")]
    load(store, gmail + yahoo + elsewhere)
    rules = tuple(
        AlertRule(name=m, metric=m, threshold=0.5, by="mailbox_provider")
        for m in ("spam_rate", "block_rate", "deferral_rate")
    )
    measured = Evaluator(store.query, store.database).measure(rules, at(10))
    assert measured == {
        "spam_rate": {"google": Sample(2 / 4, 4), "yahoo": Sample(0.0, 1), "other": Sample(0.0, 1)},
        "block_rate": {"google": Sample(0.0, 4), "yahoo": Sample(1 / 3, 3), "other": Sample(0.0, 1)},
        "deferral_rate": {"google": Sample(1 / 4, 4), "yahoo": Sample(0.0, 3), "other": Sample(0.0, 1)},
    }
