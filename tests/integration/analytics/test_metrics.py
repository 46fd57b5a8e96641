"""Every metric of the API on generated mail with a known answer
(tests/integration/analytics/knownanswer.py), loaded with duplicated rows and several state versions
through the real store into real chDB, compared field by field with the answer computed from the plan
(quantiles: exact estimator, so up to float rounding)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from pydantic import SecretStr

from adapters.clickhouse import ClickHouseStore
from alerting.notify import ALERT_COLUMNS
from analytics.api import create_app
from analytics.service import AnalyticsService
from schemas.alert_rules import DEFAULT_RULES
from tests.integration.analytics import knownanswer as ka
from tests.integration.analytics.client import ApiClient

pytestmark = [pytest.mark.clickhouse]
TOKEN = "known-answer-token"
RANGE = {"from": ka.iso(ka.FROM), "to": ka.iso(ka.TO)}
FILTERS: list[dict[str, str]] = [
    {},
    {"provider": "twilio"},
    {"sender_domain": "news.example"},
    {"recipient_domain": "yahoo.com"},
    {"tag": "campaign=b"},
    {"tag": "env=prod", "provider": "sendgrid", "recipient_domain": "gmail.com"},
    {"mailbox_provider": "google"},
    {"mailbox_provider": "other", "provider": "sendgrid"},
    {"recipient_domain": "nowhere.example"},
]


@pytest.fixture(scope="module")
def plan() -> list[ka.Message]:
    return ka.plan()


@pytest.fixture(scope="module")
def loaded(clickhouse: Client, plan: list[ka.Message]) -> ClickHouseStore:
    store = ClickHouseStore(clickhouse, f"ka_{uuid.uuid4().hex[:10]}")
    store.migrate()
    ka.load(store, plan)
    return store


@pytest.fixture(scope="module")
def api(loaded: ClickHouseStore) -> ApiClient:
    service = AnalyticsService(loaded.client, loaded.database, DEFAULT_RULES)
    app = create_app(service, SecretStr(TOKEN), clock=lambda: ka.TO)
    return ApiClient(app, headers={"Authorization": f"Bearer {TOKEN}"})


def get(api: ApiClient, path: str, **params: Any) -> Any:
    response = api.get(path, params={**RANGE, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_load_really_holds_duplicates(loaded: ClickHouseStore, plan: list[ka.Message]) -> None:
    db = loaded.database
    [(rows, distinct)] = loaded.query(
        f"SELECT count(), uniqExact(message_id, dedupe_key) FROM {db}.email_events"
    )
    assert rows > distinct == sum(len(m.events) for m in plan)
    # State rows of one message from several inserts, until a merge (which may already have run).
    [(states, messages)] = loaded.query(f"SELECT count(), uniqExact(message_id) FROM {db}.email_state_agg")
    assert states >= messages == len(plan)


@pytest.mark.parametrize(
    "filters", FILTERS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "all"
)
def test_summary(api: ApiClient, plan: list[ka.Message], filters: dict[str, str]) -> None:
    answer = get(api, "/api/summary", **filters)
    assert answer == ka.summary(plan, filters)
    if not filters:  # the plan covers what the metrics are about
        assert answer["messages"] > 300 and answer["volumes"]["CLICK"] > 0
        assert all(0 < answer["rates"][name] < 1 for name in ("delivered", "bounced", "failed", "canceled"))
        assert answer["time_to_open_ms"]["count"] > 50


def test_a_sub_minute_range_is_widened_to_whole_minutes(api: ApiClient, plan: list[ka.Message]) -> None:
    answer = api.get(
        "/api/summary", params={"from": "2026-11-20T10:00:30Z", "to": "2026-11-20T11:59:01+00:00"}
    )
    assert answer.json() == ka.summary(plan, {})


@pytest.mark.parametrize("bucket", [900, 3600])
@pytest.mark.parametrize("filters", FILTERS[:5], ids=str)
def test_timeseries(api: ApiClient, plan: list[ka.Message], bucket: int, filters: dict[str, str]) -> None:
    answer = get(api, "/api/timeseries", bucket=bucket, **filters)
    assert answer == ka.timeseries(plan, filters, bucket)
    assert len(answer["points"]) == 7200 // bucket


def test_timeseries_default_bucket_keeps_under_300_points(api: ApiClient, plan: list[ka.Message]) -> None:
    answer = get(api, "/api/timeseries")  # 2 hours: 60 s gives 120 buckets
    assert answer == ka.timeseries(plan, {}, 60)


@pytest.mark.parametrize("filters", FILTERS[:5], ids=str)
def test_latency(api: ApiClient, plan: list[ka.Message], filters: dict[str, str]) -> None:
    assert get(api, "/api/latency", bucket=900, **filters) == ka.latency(plan, filters, 900)


@pytest.mark.parametrize(
    "by",
    ["provider", "sender_domain", "recipient_domain", "mailbox_provider", "tag", "bounce_classification"],
)
@pytest.mark.parametrize(
    "order",
    [
        "failure",
        "bounced",
        "failed",
        "canceled",
        "delivered",
        "spam",
        "unsubscribe",
        "block",
        "deferral",
        "messages",
    ],
)
def test_breakdown(api: ApiClient, plan: list[ka.Message], by: str, order: str) -> None:
    answer = get(api, "/api/breakdown", by=by, order=order, limit=100, min_volume=1)
    assert answer == ka.breakdown(plan, {}, by, order, 100, 1)
    assert len(answer["rows"]) >= 2


@pytest.mark.parametrize("order", ["failure", "bounced", "failed", "canceled", "delivered", "messages"])
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_breakdown_top_n(api: ApiClient, plan: list[ka.Message], order: str, limit: int) -> None:
    for by in ("recipient_domain", "tag"):
        answer = get(api, "/api/breakdown", by=by, order=order, limit=limit, min_volume=0)
        assert answer == ka.breakdown(plan, {}, by, order, limit, 0)
        assert len(answer["rows"]) == limit


def test_worst_domains_with_min_volume_limit_and_filter(api: ApiClient, plan: list[ka.Message]) -> None:
    params = {"by": "recipient_domain", "order": "failure", "limit": 3, "min_volume": 20}
    for filters in FILTERS[:3]:
        answer = get(api, "/api/breakdown", **params, **filters)
        assert answer == ka.breakdown(plan, filters, "recipient_domain", "failure", 3, 20)
    # tiny.example and x.example have too few outcomes to rank
    assert {"tiny.example", "x.example"}.isdisjoint(
        r["key"] for r in get(api, "/api/breakdown", **params)["rows"]
    )


@pytest.mark.parametrize("filters", FILTERS[:4], ids=str)
def test_funnel(api: ApiClient, plan: list[ka.Message], filters: dict[str, str]) -> None:
    assert get(api, "/api/funnel", **filters) == ka.funnel(plan, filters)


def test_alerts_newest_first_in_range(api: ApiClient, loaded: ClickHouseStore) -> None:
    at = ka.FROM + timedelta(minutes=30)
    yahoo = ("failure-rate", "failure_rate", "recipient_domain", "yahoo.example")
    rows = [
        [at, *yahoo, "firing", 0.25, 0.1, 40, 300],
        [at + timedelta(minutes=9), *yahoo, "resolved", 0.05, 0.1, 60, 300],
        [ka.FROM - timedelta(seconds=1), "bounce-rate", "bounce_rate", "", "", "firing", 0.5, 0.05, 200, 300],
    ]  # fmt: skip
    for _ in range(2):  # a retried insert must not show twice
        loaded.client.insert(f"{loaded.database}.alerts", rows, column_names=list(ALERT_COLUMNS))
    answer = get(api, "/api/alerts", limit=10)
    assert [(e["at"], e["state"], e["key"], e["value"], e["volume"]) for e in answer["events"]] == [
        ("2026-11-20T10:39:00Z", "resolved", "yahoo.example", 0.05, 60),
        ("2026-11-20T10:30:00Z", "firing", "yahoo.example", 0.25, 40),
    ]
    assert [r["name"] for r in answer["rules"]] == [r.name for r in DEFAULT_RULES]
    assert answer["rules"][0]["threshold"] == 0.10
    assert len(get(api, "/api/alerts", limit=1)["events"]) == 1


def test_default_range_is_the_last_24_hours(api: ApiClient) -> None:
    answer = api.get("/api/summary").json()  # the app's clock says TO
    assert (answer["from"], answer["to"]) == (ka.iso(ka.TO - timedelta(hours=24)), ka.iso(ka.TO))
    assert answer["messages"] > 0


def test_service_is_usable_without_http(loaded: ClickHouseStore, plan: list[ka.Message]) -> None:
    from analytics import queries as q

    service = AnalyticsService(loaded.client, loaded.database)
    window = q.parse_window({"from": [RANGE["from"]], "to": [RANGE["to"]]}, datetime.now(UTC))
    assert service.summary(window) == ka.summary(plan, {})


# Ranges whose edges fall inside hours and 5-minute periods: the hourly rollup answers the whole hours, the
# 5-minute and minute rollups the edges, and the merged answer must still be the exact one.
ODD_RANGES = [
    (ka.FROM - timedelta(minutes=13), ka.TO + timedelta(minutes=13)),
    (ka.FROM + timedelta(minutes=7), ka.TO - timedelta(minutes=2)),
    (ka.FROM + timedelta(minutes=3), ka.FROM + timedelta(minutes=58)),
    (ka.FROM - timedelta(minutes=1), ka.FROM + timedelta(minutes=1)),
]


@pytest.mark.parametrize("start, end", ODD_RANGES, ids=lambda t: t.strftime("%H:%M"))
@pytest.mark.parametrize("filters", FILTERS, ids=str)
def test_summary_over_ranges_not_aligned_to_hours(
    api: ApiClient, plan: list[ka.Message], start: datetime, end: datetime, filters: dict[str, str]
) -> None:
    answer = api.get("/api/summary", params={"from": ka.iso(start), "to": ka.iso(end), **filters}).json()
    assert answer == ka.summary(plan, filters, start, end)


@pytest.mark.parametrize("by", ["provider", "recipient_domain", "tag"])
def test_breakdown_over_a_range_not_aligned_to_hours(api: ApiClient, plan: list[ka.Message], by: str) -> None:
    start, end = ODD_RANGES[0]
    params = {"from": ka.iso(start), "to": ka.iso(end), "by": by, "order": "messages", "limit": 100}
    answer = api.get("/api/breakdown", params=params).json()
    assert answer["rows"] == ka.breakdown(plan, {}, by, "messages", 100, 1, start, end)["rows"]


@pytest.mark.parametrize("filters", [{}, {"provider": "twilio"}, {"tag": "campaign=a"}], ids=str)
def test_timeseries_in_5_minute_buckets(
    api: ApiClient, plan: list[ka.Message], filters: dict[str, str]
) -> None:
    assert get(api, "/api/timeseries", bucket=300, **filters) == ka.timeseries(plan, filters, 300)
