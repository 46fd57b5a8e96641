"""The Grafana dashboard (infra/grafana/dashboards/mailpulse.json): every panel queries the provisioned
ClickHouse datasource, and its SQL, with Grafana's macros expanded as the plugin does, runs on real chDB
tables and gives the same figures as the /api does for the same range."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from adapters.clickhouse import ClickHouseStore
from analytics.queries import Breakdown, Window, iso
from analytics.service import AnalyticsService
from tests.analytics.grafana_dashboard import panels
from tests.integration.analytics.dashboard_data import load, utcnow

INTERVAL_S = 300
# Headline column -> the rate of schemas/outcomes.py it shows
COLUMNS = {"delivery_rate": "delivered", "bounce_rate": "bounced", "failed_rate": "failed",
           "canceled_rate": "canceled", "failure_rate": "failure", "open_rate": "opened"}  # fmt: skip


def expand(sql: str, start: datetime, end: datetime, database: str) -> str:
    """Grafana's ClickHouse macros as the plugin expands them, and our database for the default one."""
    first, last = int(start.timestamp()), int(end.timestamp())
    sql = re.sub(
        r"\$__timeFilter\(([\w.]+)\)", rf"\1 >= toDateTime({first}) AND \1 <= toDateTime({last})", sql
    )
    sql = re.sub(
        r"\$__timeInterval\(([\w.]+)\)",
        rf"toStartOfInterval(toDateTime(\1), INTERVAL {INTERVAL_S} second)",
        sql,
    )
    sql = sql.replace("$__fromTime", f"toDateTime({first})").replace("$__toTime", f"toDateTime({last})")
    sql = sql.replace("$__interval_s", str(INTERVAL_S)).replace("mailpulse.", f"{database}.")
    assert "$" not in sql, sql
    return sql


@pytest.mark.clickhouse
def test_every_panel_runs_on_chdb_and_agrees_with_the_api(store: ClickHouseStore) -> None:
    now = utcnow()
    load(store, now)
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    window = Window(end - timedelta(hours=2), end)
    api = AnalyticsService(store.client, store.database)

    def run(title: str) -> list[dict[str, Any]]:
        [panel] = [p for p in panels() if p["title"] == title]
        sql = expand(panel["targets"][0]["rawSql"], window.start, window.end, store.database)
        return list(store.client.query(sql).named_results())

    summary = api.summary(window)
    [headline] = run("Headline")
    assert headline["messages"] == summary["messages"] > 0
    for column, rate in COLUMNS.items():
        assert headline[column] == round(summary["rates"][rate], 4), column

    series = api.timeseries(window, INTERVAL_S)["points"]
    volumes = {(p["t"], s): n for p in series for s, n in p["volumes"].items() if n}
    assert {(iso(r["time"]), r["status"]): r["messages"] for r in run("Volume by status")} == volumes
    # A bucket with events but no outcome yet has no rate (null), in both.
    rates = {p["t"]: (p["rates"]["failure"], p["rates"]["bounced"]) for p in series}
    rounded = {t: tuple(None if v is None else round(v, 4) for v in pair) for t, pair in rates.items()}
    assert {
        iso(r["time"]): (r["failure_rate"], r["bounce_rate"]) for r in run("Failure and bounce rate")
    } == rounded

    steps = [(s["stage"], s["messages"]) for s in api.funnel(window)["steps"] if s["messages"]]
    assert [(r["stage"], r["messages"]) for r in run("Delivery funnel")] == steps and len(steps) == 5

    latency = {
        p["t"]: (
            p["time_to_deliver_ms"]["p50"],
            p["time_to_deliver_ms"]["p95"],
            p["time_to_deliver_ms"]["p99"],
        )
        for p in api.latency(window, INTERVAL_S)["points"]
    }
    assert {iso(r["time"]): (r["p50"], r["p95"], r["p99"]) for r in run("Time to deliver")} == latency
    assert len(latency) > 1

    ranked = api.breakdown(window, Breakdown("recipient_domain", "failure", 10, 10))["rows"]
    expected = [(r["key"], r["messages"], round(r["rates"]["failure"], 4)) for r in ranked]
    worst = [
        (r["recipient_domain"], r["messages"], r["failure_rate"]) for r in run("Worst recipient domains")
    ]
    assert worst == expected and worst[0][0] == "aol.example"

    alerts = [(e["rule"], e["key"], e["state"]) for e in api.alerts(window, 50)["events"]]
    assert [(r["rule"], r["key"], r["state"]) for r in run("Alerts")] == alerts and len(alerts) == 2
