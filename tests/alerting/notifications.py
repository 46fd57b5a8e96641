"""A sample alert notification and the notification counters, for the alerting tests."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from alerting.state_machine import Notification

AT = datetime(2026, 11, 23, 12, 5, 0, 123000, tzinfo=UTC)
FIRING = Notification(
    at=AT, rule="fail", metric="failure_rate", dimension="sender_domain", key="shop.example", state="firing",
    value=0.42, threshold=0.2, volume=120, window_s=300, reason="failure_rate above 0.2 for 60s",
)  # fmt: skip


def sent(channel: str, outcome: str) -> float:
    labels = {"channel": channel, "outcome": outcome}
    return REGISTRY.get_sample_value("mailpulse_alert_notifications_total", labels) or 0.0
