"""Prometheus metrics of ingest (process-wide, default registry)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.responses import Response

REQUESTS = Counter(
    "mailpulse_ingest_requests", "Webhook requests by endpoint and status code", ["endpoint", "code"]
)
EVENTS = Counter("mailpulse_ingest_events", "Webhook events by endpoint and outcome", ["endpoint", "outcome"])
PUBLISH_SECONDS = Histogram(
    "mailpulse_ingest_publish_seconds", "Time until Kafka acknowledged a request's events", ["endpoint"]
)

UNACKNOWLEDGED = Gauge(
    "mailpulse_ingest_unacknowledged_events",
    "Events handed to the Kafka producer and not yet acknowledged (the producer's queue depth)",
)


Handler = Callable[[Request], Awaitable[Response]]


def counted(endpoint: str) -> Callable[[Handler], Handler]:
    """Count every answer of ``endpoint`` by status code."""

    by_code: dict[int, Any] = {}  # labelled children, looked up once (labels() takes a lock each call)

    def wrap(handle: Handler) -> Handler:
        async def counting(request: Request) -> Response:
            response = await handle(request)
            code = response.status_code
            child = by_code.get(code)
            if child is None:
                child = by_code[code] = REQUESTS.labels(endpoint, str(code))
            child.inc()
            return response

        return counting

    return wrap
