"""The simulator's HTTP face (Starlette): the Email API endpoints and the ground-truth dump.

Every error answer has one shape::

    {"status": 400, "code": "invalid_request", "message": "3 problems found",
     "errors": [{"field": "content.html", "code": "required", "message": "..."}, ...]}

``/v1/*`` requests pass, in order: basic auth when credentials are configured (401), the rate limit
(429 with ``Retry-After`` in whole seconds), the injected failure rate (503), then the endpoint. Every
answer carries a ``Date`` header in API time (accelerated when the clock is).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.body_limits import BodyTooLarge, read_limited
from adapters.ratelimit import TokenBucket
from simulator.core import EMAIL_STATUSES, OPERATION_STATUSES, EmailTruth, Simulator
from simulator.model import iso
from simulator.paging import PageTokenError, parse_list_query
from simulator.validation import MAX_REQUEST_BYTES, Problem, validate_send

Handler = Callable[[Request], Awaitable[Response]]
# Bodies up to twice the limit are still read and validated whole, so an oversized request is told
# about its other problems too; beyond that the answer is 413 at once.
READ_LIMIT = 2 * MAX_REQUEST_BYTES


@dataclass(frozen=True)
class ApiConfig:
    rate_limit: TokenBucket | None = None
    error_rate: float = 0.0
    credentials: tuple[str, str] | None = field(default=None, repr=False)
    stats: Callable[[], dict[str, Any]] = dict  # extra figures for /_sim/truth (webhook sender)
    rng: random.Random = field(default_factory=lambda: random.Random(0))


def failure(
    status: int,
    code: str,
    message: str,
    errors: Sequence[Problem] = (),
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"status": status, "code": code, "message": message, "errors": [p.to_json() for p in errors]}
    return JSONResponse(body, status_code=status, headers=headers)


def truth_json(truth: list[EmailTruth]) -> list[dict[str, Any]]:
    return [
        {
            "id": t.id,
            "operationId": t.operation_id,
            "status": t.status.value,
            "statusSince": iso(t.since),
            "createdAt": iso(t.created_at),
            "opens": t.opens,
            "transitions": [{"status": s.status.value, "at": iso(s.at)} for s in t.transitions],
        }
        for t in truth
    ]


def create_app(simulator: Simulator, config: ApiConfig | None = None) -> Starlette:
    config = config or ApiConfig()
    clock = simulator.clock

    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            response = await _checks(request) or await handler(request)
            response.headers["Date"] = format_datetime(clock.now(), usegmt=True)
            return response

        return endpoint

    async def _checks(request: Request) -> Response | None:
        if config.credentials and not _authorized(request.headers.get("authorization"), config.credentials):
            return failure(401, "unauthorized", "valid basic auth credentials are required")
        if config.rate_limit is not None:
            wait = config.rate_limit.try_take()
            if wait > 0:
                retry_after = str(max(1, math.ceil(wait)))
                return failure(
                    429, "too_many_requests", "rate limit exceeded", headers={"Retry-After": retry_after}
                )
        if config.error_rate and config.rng.random() < config.error_rate:
            return failure(503, "service_unavailable", "simulated outage, retry later")
        return None

    async def send(request: Request) -> Response:
        try:
            body = await read_limited(request, READ_LIMIT)
        except BodyTooLarge:
            return failure(413, "request_too_large", "the request must not exceed 10 MB")
        except ClientDisconnect:
            return failure(400, "invalid_request", "client disconnected before the body was complete")
        send_request, problems = validate_send(body, clock.now())
        if send_request is None:
            return failure(400, "invalid_request", f"{len(problems)} problems found", problems)
        operation = simulator.accept(send_request)
        location = str(request.url_for("operation", operation_id=operation.id))
        return JSONResponse({"operationId": operation.id, "operationLocation": location}, status_code=202)

    def lister(kind: str, statuses: frozenset[str]) -> Handler:
        async def endpoint(request: Request) -> Response:
            query, problems = parse_list_query(request.query_params, statuses)
            if problems:
                return failure(400, "invalid_request", f"{len(problems)} problems found", problems)
            now = clock.now()
            try:
                if kind == "emails":
                    items, token = simulator.list_emails(query, now)
                else:
                    items, token = simulator.list_operations(query, now)
            except PageTokenError as exc:
                return failure(
                    400, "invalid_request", str(exc), [Problem("pageToken", "invalid_token", str(exc))]
                )
            return JSONResponse({kind: items, "pageSize": query.page_size, "nextPageToken": token})

        return endpoint

    async def email(request: Request) -> Response:
        found = simulator.email(request.path_params["email_id"], clock.now())
        if found is None:
            return failure(404, "not_found", "no such email (or older than the 7-day retention)")
        return JSONResponse(found.resource(clock.now()))

    async def operation(request: Request) -> Response:
        now = clock.now()
        found = simulator.operation(request.path_params["operation_id"], now)
        if found is None:
            return failure(404, "not_found", "no such operation (or older than the 7-day retention)")
        return JSONResponse(simulator.operation_resource(found, now))

    async def truth(request: Request) -> Response:
        now = clock.now()
        return JSONResponse(
            {
                "now": iso(now),
                "settled": simulator.settled(now),
                "stats": config.stats(),
                "emails": truth_json(simulator.truth(now)),
                "operations": [
                    simulator.operation_resource(o, now)
                    for o in simulator.operations.values()
                    if o.created_at <= now
                ],
            }
        )

    async def sim_clock(request: Request) -> Response:
        return JSONResponse({"now": iso(clock.now()), "acceleration": clock.acceleration})

    return Starlette(
        routes=[
            Route("/v1/Emails", guarded(send), methods=["POST"]),
            Route("/v1/Emails", guarded(lister("emails", EMAIL_STATUSES)), methods=["GET"]),
            Route(
                "/v1/Emails/Operations", guarded(lister("operations", OPERATION_STATUSES)), methods=["GET"]
            ),
            Route(
                "/v1/Emails/Operations/{operation_id}", guarded(operation), methods=["GET"], name="operation"
            ),
            Route("/v1/Emails/{email_id}", guarded(email), methods=["GET"]),
            Route("/_sim/truth", truth, methods=["GET"]),
            Route("/_sim/clock", sim_clock, methods=["GET"]),
        ]
    )


def _authorized(header: str | None, credentials: tuple[str, str]) -> bool:
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        given = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{credentials[0]}:{credentials[1]}".encode()
    return hmac.compare_digest(given, expected)
