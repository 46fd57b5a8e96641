"""/healthz, /readyz and /metrics for roles without their own HTTP app (`mailpulse process`, `alerts`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from alerting.runner import AlertRunner
from alerting.state_machine import Phase
from processors.status_processor import StatusProcessor

CHECK_TIMEOUT_S = 5.0


def health_app(processor: StatusProcessor, clock: Callable[[], float] = time.monotonic) -> Starlette:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        problems: list[str] = []
        detail: dict[str, object] = {}
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await asyncio.to_thread(processor.store.client.command, "SELECT 1")
        except Exception as exc:
            problems.append(f"ClickHouse unreachable: {exc!r}"[:300])
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                detail = await processor.readiness(clock())
        except Exception as exc:
            problems.append(f"Kafka unreachable: {exc!r}"[:300])
        stuck = detail.get("stuck") or []
        if stuck:
            problems.append(f"partitions {stuck} have lag but made no progress")
        status = 503 if problems else 200
        return JSONResponse({"ready": not problems, "problems": problems, **detail}, status_code=status)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Mount("/metrics", app=make_asgi_app()),
        ]
    )


def alerts_health_app(runner: AlertRunner) -> Starlette:
    """/healthz says when the last evaluation succeeded and how many alerts fire; /metrics."""

    async def healthz(request: Request) -> Response:
        last = runner.last_evaluation
        firing = [
            {"rule": rule, "key": key}
            for rule, keys in runner.states.items()
            for key, state in keys.items()
            if state.phase is Phase.FIRING
        ]
        return JSONResponse(
            {"status": "alive", "last_evaluation": last.isoformat() if last else None, "firing": firing}
        )

    return Starlette(
        routes=[Route("/healthz", healthz, methods=["GET"]), Mount("/metrics", app=make_asgi_app())]
    )
