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
