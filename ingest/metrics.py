"""Prometheus metrics of ingest (process-wide, default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "mailpulse_ingest_requests", "Webhook requests by endpoint and status code", ["endpoint", "code"]
)
EVENTS = Counter("mailpulse_ingest_events", "Webhook events by endpoint and outcome", ["endpoint", "outcome"])
PUBLISH_SECONDS = Histogram(
    "mailpulse_ingest_publish_seconds", "Time until Kafka acknowledged a request's events", ["endpoint"]
)
