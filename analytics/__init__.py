"""Deliverability analytics: metric queries over the rollup and message state, the read-only JSON API,
``mailpulse report`` and the dashboard."""
