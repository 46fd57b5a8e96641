"""The one definition of outcomes, rates, funnel and human units (pure)."""

from __future__ import annotations

import itertools

import pytest

from schemas import outcomes as o
from schemas.status import EmailStatus as S


def test_final_status_is_the_highest_outbound_precedence() -> None:
    assert o.final_status([S.QUEUED, S.DELIVERED, S.UNDELIVERED]) is S.UNDELIVERED
    assert o.final_status([S.UNDELIVERED, S.OPENED]) is S.OPENED
    assert o.final_status(["SENT", "FAILED"]) is S.SENT
    assert o.final_status([S.INBOUND]) is None and o.final_status([]) is None


def test_classes_partition_outbound_statuses_with_pending() -> None:
    outbound = {s for s in S if s is not S.INBOUND}
    members = [m for ms in o.CLASSES.values() for m in ms] + list(o.PENDING)
    assert sorted(members) == sorted(outbound)


def test_classes_add_up_to_every_outcome_and_the_funnel_never_increases() -> None:
    finals: list[S | None] = [*S, None]
    messages = [(f, c) for f, c in itertools.product(finals, (False, True))]
    figures = o.tally(messages * 3)
    assert figures.outcomes == figures.delivered + figures.bounced + figures.failed + figures.canceled
    rates = figures.rates()
    assert sum(rates[c] or 0 for c in o.CLASSES) == pytest.approx(1.0)
    steps = [n for _, n in figures.funnel()]
    assert steps == sorted(steps, reverse=True)
    # 6 of each status (with and without a click); DELIVERED/OPENED are delivered, clicked ones too.
    assert (figures.delivered, figures.bounced, figures.failed, figures.canceled) == (12, 6, 6, 6)
    assert (figures.pending, figures.opened, figures.clicked) == (18, 9, 6)
    assert figures.funnel() == [
        ("QUEUED", 6 * 6),  # QUEUED, FAILED, SENT, UNDELIVERED, DELIVERED, OPENED
        ("SENT", 6 * 4),
        ("DELIVERED", 12),
        ("OPENED", 9),
        ("CLICKED", 6),
    ]


def test_a_delivered_message_without_queued_event_still_counts_at_queued() -> None:
    figures = o.figures_of({"a": ["DELIVERED"], "b": ["QUEUED"], "c": ["SENT", "UNDELIVERED"]})
    assert figures.funnel()[:3] == [("QUEUED", 3), ("SENT", 2), ("DELIVERED", 1)]
    assert figures.rates()["delivered"] == 0.5 and figures.rates()["bounced"] == 0.5


def test_signals_count_among_their_class_and_divide_by_their_denominator() -> None:
    every = o.Seen(clicked=True, spam_reported=True, unsubscribed=True, blocked=True, deferred=True)
    figures = o.tally([(f, every) for f in [*S, None]] + [(S.DELIVERED, o.Seen()), (S.UNDELIVERED, False)])
    # A spam report or unsubscribe counts on a delivered message, a block on a bounced one, a deferral
    # on one that reached SENT; elsewhere the flag counts nowhere (it cannot have happened in the range).
    assert (figures.spam_reported, figures.unsubscribed) == (2, 2)  # DELIVERED, OPENED
    assert figures.blocked == 1  # UNDELIVERED with the flag (not the one without)
    assert figures.deferred == 4  # SENT, UNDELIVERED, DELIVERED, OPENED
    assert (figures.delivered, figures.outcomes, figures.reached_sent) == (3, 7, 6)
    rates = figures.rates()
    assert rates["spam"] == rates["unsubscribe"] == 2 / 3
    assert rates["block"] == 1 / 7 and rates["deferral"] == 4 / 6
    assert [figures.denominator(r) for r in ("spam", "block", "deferral", "failure", "opened")] == [
        3,
        7,
        6,
        7,
        3,
    ]
    assert figures.counts()["blocked"] == 1 and set(o.SIGNALS) <= set(figures.counts())
    assert list(rates) == list(o.RATES)
    # Figures as SQL columns come back in FIELDS order, the signals included.
    assert o.from_row([getattr(figures, f) for f in o.FIELDS]) == figures


def test_flags_as_sql_name_each_event_kind() -> None:
    sql = o.sql_flags(lambda kind: f"has('{kind}')")
    assert "(has('UNSUBSCRIBE') OR has('GROUP_UNSUBSCRIBE')) AS has_unsubscribed" in sql
    assert "(has('BLOCKED')) AS has_blocked" in sql and sql.count(" AS has_") == len(o.FLAGS)
    assert len(o.sql_counts("f")) == len(o.FIELDS)


def test_rates_without_denominator_are_none() -> None:
    assert set(o.Figures().rates().values()) == {None}


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (None, "-"),
        (0, "0 ms"),
        (999, "999 ms"),
        (999.4, "999 ms"),
        (999.6, "1.0 s"),
        (1000, "1.0 s"),
        (59_940, "59.9 s"),
        (59_999, "1.0 min"),
        (90_000, "1.5 min"),
        (2_913_545, "48.6 min"),
        (3_599_000, "1.0 h"),
        (3_594_000, "59.9 min"),
        (5_400_000, "1.5 h"),
        (86_400_000, "1.0 d"),
        (90 * 86_400_000, "90.0 d"),
    ],
)
def test_human_duration(ms: float | None, text: str) -> None:
    assert o.human_duration(ms) == text
