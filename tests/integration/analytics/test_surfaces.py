"""Every surface gives the same figures on the same data (the known-answer load): the alert measurements
and the analyst views equal the API over the same range, and the demo's summary (all messages by final
status, from the ``messages`` view) equals the API over a range holding every event."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from clickhouse_connect.driver.client import Client

from adapters.clickhouse import ClickHouseStore
from alerting.evaluate import Evaluator
from alerting.state_machine import Sample
from analytics import queries as q
from analytics.service import AnalyticsService
from mailpulse.demo import summary_figures
from schemas.alert_rules import AlertRule
from tests.integration.analytics import knownanswer as ka

pytestmark = [pytest.mark.clickhouse]
CLASSES = ("delivered", "bounced", "failed", "canceled")


@pytest.fixture(scope="module")
def loaded(clickhouse: Client) -> ClickHouseStore:
    store = ClickHouseStore(clickhouse, f"surfaces_{uuid.uuid4().hex[:10]}")
    store.migrate()
    ka.load(store, ka.plan())
    return store


def test_alert_measurements_equal_the_api(loaded: ClickHouseStore) -> None:
    service = AnalyticsService(loaded.client, loaded.database)
    window = q.Window(ka.FROM, ka.TO)
    span = int((ka.TO - ka.FROM).total_seconds())
    rules = (
        AlertRule(name="f", metric="failure_rate", threshold=0.5, window_s=span, by="recipient_domain"),
        AlertRule(name="b", metric="bounce_rate", threshold=0.5, window_s=span),
    )
    measured = Evaluator(loaded.query, loaded.database).measure(rules, ka.TO)
    rows = service.breakdown(window, q.Breakdown("recipient_domain", "messages", 1000, 1))["rows"]
    assert measured["f"] == {r["key"]: Sample(r["rates"]["failure"], r["messages"]) for r in rows}
    assert len(rows) > 3
    summary = service.summary(window)
    assert measured["b"] == {"": Sample(summary["rates"]["bounced"], summary["messages"])}


def test_daily_view_equals_the_api_over_the_day(loaded: ClickHouseStore) -> None:
    day = ka.FROM.replace(hour=0)
    service = AnalyticsService(loaded.client, loaded.database)
    summary = service.summary(q.Window(day, day + timedelta(days=1)))
    columns = ", ".join(f"sum({c}_outcomes)" for c in CLASSES)
    # Each known-answer message has one provider and pair of domains: the groups add up.
    [sums] = loaded.query(
        f"SELECT {columns}, sum(outcomes) FROM {loaded.database}.stats_daily WHERE day = {{d:Date}}",
        {"d": day.date()},
    )
    assert list(sums) == [summary["counts"][c] for c in CLASSES] + [summary["messages"]]


def test_demo_summary_equals_the_api_over_every_event(loaded: ClickHouseStore) -> None:
    statuses = [str(s) for (s,) in loaded.query(f"SELECT status FROM {loaded.database}.messages")]
    figures = summary_figures(statuses)
    service = AnalyticsService(loaded.client, loaded.database)
    summary = service.summary(q.Window(ka.FROM - timedelta(days=1), ka.TO + timedelta(days=1)))
    assert {c: getattr(figures, c) for c in CLASSES} == {c: summary["counts"][c] for c in CLASSES}
    assert (figures.outcomes, figures.pending) == (summary["messages"], summary["pending"])
    assert {c: figures.rates()[c] for c in CLASSES} == {c: summary["rates"][c] for c in CLASSES}
