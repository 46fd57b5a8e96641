"""The ingest ASGI app. ``create_app`` is the composition root's only way to build it.

Batch policy (every endpoint): each element is validated on its own. Valid events are published to
the status topic, invalid ones to the dead-letter topic with their problems, and only after Kafka
acknowledged all of them is the request answered: 200 listing any rejected elements, or 422 when no
element was valid. A body that is not a JSON array is 400; Kafka not acknowledging in time is 503
with Retry-After, so the provider retries (replays are harmless: processors dedupe).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from ingest import metrics
from ingest.publisher import Publisher, PublishFailed, Rejected
from schemas.event import CanonicalEvent
from schemas.problems import InvalidEvent
from schemas.sendgrid import parse_sendgrid_event
from schemas.twilio import parse_cloud_event

log = logging.getLogger(__name__)

Parser = Callable[[Any, datetime], CanonicalEvent]
RETRY_AFTER_S = "5"


class BodyTooLarge(Exception):
    pass


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # stop reading as soon as the limit is passed
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _batch_endpoint(
    name: str, parse: Parser, publisher: Publisher, max_body_bytes: int
) -> Callable[..., Any]:
    async def endpoint(request: Request) -> Response:
        response = await handle(request)
        metrics.REQUESTS.labels(name, str(response.status_code)).inc()
        return response

    async def handle(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _error(415, f"content type must be application/json, got {content_type or 'none'!r}")
        try:
            body = await _read_limited(request, max_body_bytes)
        except BodyTooLarge:
            return _error(413, f"body larger than {max_body_bytes} bytes")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _error(400, f"body is not valid JSON: {exc}")
        if not isinstance(payload, list):
            return _error(400, "body must be a JSON array of events")
        received_at = datetime.now(UTC)
        events: list[CanonicalEvent] = []
        rejected: list[Rejected] = []
        for index, raw in enumerate(payload):
            try:
                events.append(parse(raw, received_at))
            except InvalidEvent as exc:
                problems = [{"field": p.field, "message": p.message} for p in exc.problems]
                rejected.append(Rejected(name, index, raw, problems))
        try:
            with metrics.PUBLISH_SECONDS.labels(name).time():
                await publisher.publish(events, rejected)
        except PublishFailed as exc:
            log.warning("publish failed on %s: %s", name, exc)
            return JSONResponse(
                {"error": "events could not be made durable now; retry later"},
                status_code=503,
                headers={"Retry-After": RETRY_AFTER_S},
            )
        metrics.EVENTS.labels(name, "accepted").inc(len(events))
        metrics.EVENTS.labels(name, "rejected").inc(len(rejected))
        errors = [{"index": r.index, **p} for r in rejected for p in r.problems]
        if rejected and not events:
            return _error(422, "no valid event in the batch", rejected=len(rejected), errors=errors)
        return JSONResponse({"accepted": len(events), "rejected": len(rejected), "errors": errors})

    return endpoint


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(publisher: Publisher, max_body_bytes: int) -> Starlette:
    return Starlette(
        routes=[
            Route(
                "/webhooks/sendgrid/events",
                _batch_endpoint("sendgrid", parse_sendgrid_event, publisher, max_body_bytes),
                methods=["POST"],
            ),
            Route(
                "/webhooks/twilio/events",
                _batch_endpoint("twilio", parse_cloud_event, publisher, max_body_bytes),
                methods=["POST"],
            ),
            Route("/healthz", healthz, methods=["GET"]),
            Mount("/metrics", app=make_asgi_app()),
        ]
    )
