"""Prometheus metrics of the poller (process-wide, default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "mailpulse_poller_requests",
    "Email API requests by endpoint and outcome (ok, not_found, throttled, server_error, "
    "client_error, transport_error)",
    ["endpoint", "outcome"],
)
BACKOFFS = Counter("mailpulse_poller_backoffs", "Retries after a 429, 5xx or network error", ["reason"])
PUBLISHED = Counter("mailpulse_poller_published", "Transitions published by the poller", ["kind"])
RECONCILED = Counter("mailpulse_poller_reconciled", "Unsettled emails re-polled by reconciliation")
EXPIRED = Counter(
    "mailpulse_poller_expired_unsettled", "Unsettled emails that left the API's retention before settling"
)
CHECKPOINT_LAG = Gauge(
    "mailpulse_poller_checkpoint_lag_seconds",
    "API time now minus the high-water mark of listed emails (data is lost past 7 days)",
)
RETENTION_WARNINGS = Counter(
    "mailpulse_poller_retention_warnings",
    "Cycles that found the checkpoint close to or past retention",
    ["level"],
)
UNSETTLED = Gauge("mailpulse_poller_unsettled", "Emails the poller still re-polls")
CYCLES = Counter("mailpulse_poller_cycles", "Poll cycles by outcome", ["outcome"])
CYCLE_SECONDS = Histogram("mailpulse_poller_cycle_seconds", "Duration of a poll cycle")
