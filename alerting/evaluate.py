"""Measure every rule's window on ClickHouse: rule name -> key -> Sample (parameterized queries only)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from alerting.query import counts_from_rows, measurement_groups, rates_query, sample, window
from alerting.state_machine import Sample
from schemas.alert_rules import AlertRule

QueryFn = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]


class Evaluator:
    """``query`` runs one parameterized statement (``ClickHouseStore.query``); it blocks, so callers
    on an event loop run ``measure`` in a thread."""

    def __init__(self, query: QueryFn, database: str) -> None:
        self._query = query
        self._database = database

    def measure(self, rules: tuple[AlertRule, ...], now: datetime) -> dict[str, dict[str, Sample]]:
        samples: dict[str, dict[str, Sample]] = {}
        for (by, window_s), group in measurement_groups(rules).items():
            start, end = window(now, window_s)
            sql, params = rates_query(self._database, by, start, end)
            counts = counts_from_rows(self._query(sql, params))
            for rule in group:
                samples[rule.name] = {key: sample(c, rule.metric) for key, c in counts.items()}
        return samples
