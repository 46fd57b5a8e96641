"""Prometheus metrics of ingest (process-wide, default registry)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.responses import Response

REQUESTS = Counter(
    "mailpulse_ingest_requests", "Webhook requests by endpoint and status code", ["endpoint", "code"]
)
EVENTS = Counter("mailpulse_ingest_events", "Webhook events by endpoint and outcome", ["endpoint", "outcome"])
PUBLISH_SECONDS = Histogram(
    "mailpulse_ingest_publish_seconds", "Time until Kafka acknowledged a request's events", ["endpoint"]
)

Handler = Callable[[Request], Awaitable[Response]]


class Answers:
    """Counts the answers of one endpoint by status code."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._by_code: dict[int, Any] = {}  # labelled children, looked up once (labels() takes a lock)

    def count(self, code: int) -> None:
        child = self._by_code.get(code)
        if child is None:
            child = self._by_code[code] = REQUESTS.labels(self.endpoint, str(code))
        child.inc()


def counted(endpoint: str) -> Callable[[Handler], Handler]:
    """Count every answer of ``endpoint`` by status code."""
    answers = Answers(endpoint)

    def wrap(handle: Handler) -> Handler:
        async def counting(request: Request) -> Response:
            response = await handle(request)
            answers.count(response.status_code)
            return response

        return counting

    return wrap
