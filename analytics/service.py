"""Runs the analytics queries through a clickhouse-connect client and answers in the API's JSON shapes.

Blocking (clickhouse-connect is); the API calls it from a worker thread. chDB serialises queries itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clickhouse_connect.driver.client import Client

from analytics import queries as q
from analytics.queries import Breakdown, Sql, Window
from schemas.alert_rules import AlertRule

FUNNEL_RULE = (
    "each message counts at every stage it reached at least, judged from its final status: "
    "a DELIVERED message has passed QUEUED and SENT"
)


class AnalyticsService:
    def __init__(self, client: Client, database: str, rules: Sequence[AlertRule] = ()) -> None:
        self.client = client
        self.database = database
        self.rules = tuple(rules)

    def _rows(self, sql: Sql) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.client.query(sql.text, parameters=sql.parameters).result_rows]

    def _counts(
        self, window: Window, key: str | None = None, bucket: int | None = None
    ) -> dict[Any, q.Counts]:
        return q.bit_counts(self._rows(q.message_counts_sql(self.database, window, key, bucket)))

    def _latencies(self, window: Window) -> dict[str, Any]:
        [(deliver, delivered, opening, opened)] = self._rows(q.latencies_sql(self.database, window))
        return {
            "time_to_deliver_ms": {**q.percentiles(("", deliver, delivered)), "estimator": q.ESTIMATOR},
            "time_to_open_ms": {**q.percentiles(("", opening, opened)), "estimator": q.ESTIMATOR},
        }

    def summary(self, window: Window) -> dict[str, Any]:
        counts = self._counts(window).get("", q.Counts())
        return {
            **q.window_json(window),
            **q.metrics(counts),
            **self._latencies(window),
        }

    def timeseries(self, window: Window, bucket: int) -> dict[str, Any]:
        counts = self._counts(window, bucket=bucket)
        points = [{"t": q.iso(t), **q.metrics(counts[t])} for t in sorted(counts)]
        return {**q.window_json(window), "bucket_s": bucket, "points": points}

    def latency(self, window: Window, bucket: int) -> dict[str, Any]:
        rows = sorted(self._rows(q.latency_sql(self.database, window, "deliver", bucket)), key=lambda r: r[0])
        points = [{"t": q.iso(row[0]), "time_to_deliver_ms": q.percentiles(row)} for row in rows]
        return {**q.window_json(window), "bucket_s": bucket, "estimator": q.ESTIMATOR, "points": points}

    def breakdown(self, window: Window, spec: Breakdown) -> dict[str, Any]:
        ranked = q.bit_counts(self._rows(q.breakdown_sql(self.database, window, spec)))  # in SQL's order
        rows = [{"key": str(key), **q.metrics(c)} for key, c in ranked.items()]
        return {**q.window_json(window), "by": spec.by, "order": spec.order, "rows": rows}

    def funnel(self, window: Window) -> dict[str, Any]:
        figures = self._counts(window).get("", q.Counts()).figures
        steps = [{"stage": stage, "messages": n} for stage, n in figures.funnel()]
        return {**q.window_json(window), "rule": FUNNEL_RULE, "steps": steps}

    def alerts(self, window: Window, limit: int) -> dict[str, Any]:
        names = ("at", "rule", "metric", "dimension", "key", "state", "value", "threshold", "volume")
        events = []
        for row in self._rows(q.alerts_sql(self.database, window, limit)):
            event = dict(zip(names, row, strict=True))
            event["at"] = q.iso(event["at"])
            events.append(event)
        return {**q.window_json(window), "rules": [r.model_dump() for r in self.rules], "events": events}
