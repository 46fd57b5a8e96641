"""Webhook delivery over real HTTP on loopback: retries on 429/5xx with a bounded number of attempts,
4xx discarded, and a whole simulated run received as planned (drops, copies, out of order)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailpulse.broker import free_port
from mailpulse.runtime import serve_asgi, wait_listening
from simulator.driver import Traffic, drive
from simulator.payloads import Signer
from simulator.sender import WebhookSender
from simulator.server import SimulatorConfig, SimulatorServer
from simulator.webhooks import Batch, Subject, WebhookPolicy, WebhookTarget
from tests.simulator.lifecycles import FAST


class Receiver:
    """Answers POSTs with the scripted status codes (then 200), recording every body."""

    def __init__(self, script: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.bodies: list[list[dict[str, Any]]] = []

    async def hook(self, request: Request) -> Response:
        self.bodies.append(orjson.loads(await request.body()))
        status = self.script.pop(0) if self.script else 200
        return JSONResponse(
            {"accepted": len(self.bodies[-1])}, status_code=status, headers={"Retry-After": "0"}
        )


@contextlib.asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[str]:
    port, stop = free_port(), asyncio.Event()
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    task = asyncio.create_task(serve_asgi(app, "127.0.0.1", port, stop))
    await wait_listening("127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        stop.set()
        await task


async def deliver(script: list[int], max_attempts: int) -> tuple[WebhookSender, Receiver]:
    receiver = Receiver(script)
    async with serving(receiver) as url, httpx.AsyncClient() as client:
        policy = WebhookPolicy(max_attempts=max_attempts, retry_base_s=0.01, retry_max_s=0.05)
        sender = WebhookSender(client, [WebhookTarget(url)], policy, Signer(), random.Random(0))
        await sender.deliver(Batch(0, [{"id": "a"}, {"id": "b"}], [Subject("e1", "SENT"), None]))
    return sender, receiver


def test_non_2xx_is_retried_until_delivered() -> None:
    sender, receiver = asyncio.run(deliver([503, 429, 500], max_attempts=5))
    assert len(receiver.bodies) == 4 and sender.stats.retries == 3
    assert sender.stats.delivered_events == sender.stats.accepted_events == 2
    assert sender.stats.delivered == {"e1": {"SENT"}}


def test_retries_are_bounded_and_other_4xx_are_discarded() -> None:
    sender, receiver = asyncio.run(deliver([503] * 10, max_attempts=3))
    assert len(receiver.bodies) == 3 and sender.stats.given_up == 2 and sender.stats.delivered == {}
    sender, receiver = asyncio.run(deliver([400, 200], max_attempts=3))
    assert len(receiver.bodies) == 1 and sender.stats.discarded == 2 and sender.stats.retries == 0


def test_a_simulated_run_arrives_as_planned() -> None:
    receiver = Receiver([503] * 5)  # a few failures on the way: retried

    async def main() -> None:
        async with serving(receiver) as url:
            policy = WebhookPolicy(drop_rate=0.3, duplicate_rate=0.2, max_delay_s=0.3, retry_base_s=0.01)
            config = SimulatorConfig(
                acceleration=200.0, outcomes=FAST, webhooks=(WebhookTarget(url),), policy=policy
            )
            async with SimulatorServer(config) as sim, httpx.AsyncClient(base_url=sim.base_url) as client:
                await drive(client, Traffic(300, max_recipients=50, schedule_ahead_s=(30.0, 120.0), seed=3))
                await sim.wait_quiet(30)
                plan, sent = sim.plan_stats, sim.send_stats
                copies = Counter(e["id"] for body in receiver.bodies[5:] for e in body)
                assert sent.given_up == sent.discarded == 0
                assert len(copies) == plan.events - plan.dropped
                assert sum(copies.values()) == plan.copies == sent.delivered_events
                assert abs(plan.dropped / plan.events - 0.3) < 0.06
                times: list[str] = [e["time"] for body in receiver.bodies for e in body]
                assert times != sorted(times)

    asyncio.run(asyncio.wait_for(main(), 60))
