"""The read-only JSON API (``/api/...``): bearer-token auth, parameter validation listing every problem,
then one call into ``AnalyticsService`` off the event loop.

Never open by accident: with no token configured every endpoint answers 503.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from analytics import queries as q
from analytics.openapi import openapi_document
from analytics.service import AnalyticsService

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Handler = Callable[[AnalyticsService, q.Params, datetime], dict[str, Any]]


def _now() -> datetime:
    return datetime.now(UTC)


def _params(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).append(value)
    return params


def _summary(s: AnalyticsService, p: q.Params, now: datetime) -> dict[str, Any]:
    return s.summary(q.parse_window(p, now))


def _timeseries(s: AnalyticsService, p: q.Params, now: datetime) -> dict[str, Any]:
    return s.timeseries(*q.parse_bucketed(p, now))


def _latency(s: AnalyticsService, p: q.Params, now: datetime) -> dict[str, Any]:
    return s.latency(*q.parse_bucketed(p, now))


def _breakdown(s: AnalyticsService, p: q.Params, now: datetime) -> dict[str, Any]:
    return s.breakdown(*q.parse_breakdown(p, now))


def _funnel(s: AnalyticsService, p: q.Params, now: datetime) -> dict[str, Any]:
    return s.funnel(q.parse_window(p, now))


def _alerts(s: AnalyticsService, p: q.Params, now: datetime) -> dict[str, Any]:
    return s.alerts(*q.parse_alerts(p, now))


ENDPOINTS: dict[str, Handler] = {
    "/api/summary": _summary,
    "/api/timeseries": _timeseries,
    "/api/latency": _latency,
    "/api/breakdown": _breakdown,
    "/api/funnel": _funnel,
    "/api/alerts": _alerts,
}


def _unauthorized(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def check_token(request: Request, token: SecretStr | None) -> Response | None:
    """None when the request may proceed, else the response refusing it."""
    expected = token.get_secret_value() if token else ""
    if not expected:
        return JSONResponse({"error": "api_token is not configured"}, status_code=503)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return _unauthorized("missing bearer token (Authorization: Bearer <token>)")
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return _unauthorized("invalid token")
    return None


def _endpoint(
    handler: Handler, service: AnalyticsService, token: SecretStr | None, clock: Clock
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        refused = check_token(request, token)
        if refused is not None:
            return refused
        try:
            body = await run_in_threadpool(handler, service, _params(request), clock())
        except q.ParamErrors as exc:
            return JSONResponse({"errors": exc.problems}, status_code=422)
        except Exception:
            log.exception("analytics query failed: %s", request.url.path)
            return JSONResponse({"error": "query failed (see the server log)"}, status_code=500)
        return JSONResponse(body)

    return endpoint


def api_routes(service: AnalyticsService, token: SecretStr | None, clock: Clock = _now) -> list[Route]:
    """The /api/* routes, for mounting next to the dashboard; the description is public (no token)."""
    document = openapi_document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    return [
        *(
            Route(path, _endpoint(handler, service, token, clock), methods=["GET"])
            for path, handler in ENDPOINTS.items()
        ),
        Route("/api/openapi.json", openapi, methods=["GET"]),
    ]


def create_app(service: AnalyticsService, token: SecretStr | None, clock: Clock = _now) -> Starlette:
    """The API alone (tests, or serving it without the dashboard)."""
    return Starlette(routes=api_routes(service, token, clock))
