"""Prometheus metrics of `mailpulse alerts` (process-wide, default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ALERT_STATE = Gauge(
    "mailpulse_alert_state",
    "Alert state per rule and key: 0 ok (shown while cooling down), 1 pending, 2 firing",
    ["rule", "key"],
)
NOTIFICATIONS = Counter(
    "mailpulse_alert_notifications",
    "Notifications by channel (webhook, kafka) and outcome",
    ["channel", "outcome"],
)
TRANSITIONS = Counter(
    "mailpulse_alert_transitions", "Alert transitions recorded, by rule and state", ["rule", "state"]
)
EVALUATIONS = Counter("mailpulse_alert_evaluations", "Evaluation rounds by outcome (ok, failed)", ["outcome"])
LAST_EVALUATION = Gauge(
    "mailpulse_alert_last_evaluation_timestamp_seconds", "Clock time of the last successful evaluation"
)
