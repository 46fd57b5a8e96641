"""Totals and breakdowns from ``message_minute`` equal distinct messages per status computed in Python, for
any events (dimensions differing between one message's events included), inserted in any order, in any
blocks, with any duplicates: the table ORs status bits, so arrival order and copies cannot matter."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clickhouse import ClickHouseStore
from analytics import queries as q
from schemas.event import CanonicalEvent, Provider, Source, envelope_json
from schemas.status import EmailStatus, EventKind
from storage.migrations import DERIVED_TABLES

pytestmark = [pytest.mark.clickhouse]
START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
NAMES = ("QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "FAILED", "CANCELED", "OPENED", "CLICK", "DEFERRED")
KINDS = {"CLICK": EventKind.CLICK, "DEFERRED": EventKind.DEFERRED}
TAGSETS: tuple[dict[str, str], ...] = ({}, {"campaign": "a"}, {"campaign": "b", "env": "prod"})

event_specs = st.tuples(
    st.integers(0, 5),  # message
    st.sampled_from(NAMES),
    st.integers(-10 * 60_000, 70 * 60_000),  # ms from START: before, inside and after the range
    st.sampled_from(("twilio", "sendgrid")),
    st.sampled_from((None, "shop.example", "news.example")),  # SendGrid events may lack the sender
    st.sampled_from(("gmail.com", "tiny.example")),
    st.sampled_from(TAGSETS),
)


def canonical(n: int, spec: tuple[Any, ...]) -> CanonicalEvent:
    message, name, ms, provider, sender_domain, recipient_domain, tags = spec
    at = START + timedelta(milliseconds=ms)
    return CanonicalEvent(
        event_id=f"e{n}",
        message_id=f"m{message}",
        kind=KINDS.get(name, EventKind.STATUS),
        status=None if name in KINDS else EmailStatus(name),
        # Message 0's bounces are blocks; two in three bounces carry a classification, a message's may differ.
        raw_type="blocked" if name == "UNDELIVERED" and message == 0 else name.lower(),
        bounce_classification=("Reputation", None, "Content")[(message + n) % 3]
        if name == "UNDELIVERED"
        else None,
        occurred_at=at,
        received_at=at,
        source=Source.WEBHOOK,
        provider=Provider(provider),
        recipient_domain=recipient_domain,
        sender_domain=sender_domain,
        tags=tags,
    )


# Written out here, not taken from schemas.outcomes: final status = first of these a message has seen.
FINAL_FIRST = ("OPENED", "UNDELIVERED", "DELIVERED", "SENT", "FAILED", "CANCELED", "QUEUED", "SCHEDULED")
CLASS_OF = {"OPENED": "delivered", "DELIVERED": "delivered", "UNDELIVERED": "bounced", "FAILED": "failed",
            "CANCELED": "canceled"}  # fmt: skip
Truth = tuple[dict[str, int], dict[str, int]]  # distinct messages per status; messages per outcome class
MAILBOX_PROVIDER = {"gmail.com": "google"}  # of the recipient domains above, written out


# SendGrid's classifications in the order that picks one when a message has several (written out).
CLASSIFICATIONS = ("Invalid Address", "Technical Failure", "Content", "Reputation",
                   "Frequency or Volume Too High", "Mailbox Unavailable", "Unclassified")  # fmt: skip


def _classification(events: list[CanonicalEvent], message: str) -> str:
    """A message's bounce classification in range ('' without one): the first of its events' in order."""
    mine = {e.bounce_classification for e in events if e.message_id == message and _in_range(e)}
    return next((c for c in CLASSIFICATIONS if c in mine), "")


def _in_range(e: CanonicalEvent) -> bool:
    return START <= e.occurred_at.replace(second=0, microsecond=0) < END


def truth(events: list[CanonicalEvent], key: str | None) -> dict[str, Truth]:
    """Per key value, from the events in range: distinct messages per status, and messages per outcome
    class of their final status among those events."""
    sets: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for e in events:
        if not _in_range(e):
            continue
        name = e.status.value if e.status else e.kind.value.upper()
        names = [name, "BLOCKED"] if e.raw_type == "blocked" else [name]
        if key is None:
            values = [""]
        elif key == "tag":
            values = [f"{k}={v}" for k, v in e.tags.items()] or [""]
        elif key == "mailbox_provider":
            values = [MAILBOX_PROVIDER.get(e.recipient_domain or "", "other")]
        elif key == "bounce_classification":
            values = [_classification(events, e.message_id)]
        else:
            values = [getattr(e, key) or ""]
        for value in values:
            for n in names:
                sets[value][n].add(e.message_id)
    out = {}
    for value, by_status in sets.items():
        seen: dict[str, set[str]] = defaultdict(set)
        for status, ids in by_status.items():
            for mid in ids:
                seen[mid].add(status)
        classes = dict.fromkeys(("delivered", "bounced", "failed", "canceled"), 0)
        for statuses in seen.values():
            final = next((s for s in FINAL_FIRST if s in statuses), None)
            if final in CLASS_OF:
                classes[CLASS_OF[final]] += 1
        volumes = {s: len(ids) for s, ids in by_status.items()}
        out[value] = (volumes, classes)
    return out


def stored(store: ClickHouseStore, key: str | None) -> dict[str, Truth]:
    sql = q.message_counts_sql(store.database, q.Window(START, END), key)
    counts = q.bit_counts(store.client.query(sql.text, parameters=sql.parameters).result_rows)
    out = {}
    for k, c in counts.items():
        f = c.figures
        classes = {"delivered": f.delivered, "bounced": f.bounced, "failed": f.failed, "canceled": f.canceled}
        out[str(k)] = ({s: n for s, n in c.volumes.items() if n}, classes)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(event_specs, min_size=1, max_size=30), st.data())
def test_counts_are_distinct_messages_whatever_the_order_blocks_and_copies(
    store: ClickHouseStore, specs: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    for table in ("email_events", *DERIVED_TABLES):
        store.client.command(f"TRUNCATE TABLE {store.database}.{table}")
    events = [canonical(n, spec) for n, spec in enumerate(specs)]
    copies = data.draw(st.lists(st.sampled_from(events), max_size=len(events)), label="copies")
    arrivals = data.draw(st.permutations([*events, *copies]), label="arrival order")
    cut = data.draw(st.integers(0, len(arrivals)), label="block boundary")
    for n, block in enumerate((arrivals[:cut], arrivals[cut:])):
        if block:
            store.load([envelope_json(e) for e in block], f"block-{n}")
    for key in (None, *q.DIMENSIONS):
        assert stored(store, key) == truth(events, key), key
    spec = q.Breakdown(
        data.draw(st.sampled_from(tuple(q.DIMENSIONS)), label="by"),
        # The signal rates' orders are held to a known answer in test_metrics.
        data.draw(
            st.sampled_from(("failure", "delivered", "bounced", "failed", "canceled", "messages")),
            label="order",
        ),
        data.draw(st.integers(1, 4), label="limit"),
        data.draw(st.integers(0, 3), label="min_volume"),
    )
    assert ranked(store, spec) == ranked_truth(truth(events, spec.by), spec), spec


def ranked(store: ClickHouseStore, spec: q.Breakdown) -> list[tuple[str, int]]:
    sql = q.breakdown_sql(store.database, q.Window(START, END), spec)
    counts = q.bit_counts(store.client.query(sql.text, parameters=sql.parameters).result_rows)
    assert len(counts) <= spec.limit, "the limit is applied by ClickHouse"
    return [(str(key), c.figures.outcomes) for key, c in counts.items()]


def ranked_truth(counts: dict[str, Truth], spec: q.Breakdown) -> list[tuple[str, int]]:
    def rate(classes: dict[str, int]) -> float | None:
        outcomes = sum(classes.values())
        if spec.order == "messages":
            return float(outcomes)
        numerator = classes["bounced"] + classes["failed"] if spec.order == "failure" else classes[spec.order]
        return numerator / outcomes if outcomes else None

    rows = [(key, rate(c), sum(c.values())) for key, (_, c) in counts.items()]
    rows = [r for r in rows if r[2] >= spec.min_volume]
    rows.sort(key=lambda r: (r[1] is None, -(r[1] or 0), r[0]))  # descending, nulls last, then by key
    return [(key, outcomes) for key, _, outcomes in rows[: spec.limit]]
