"""A real HTTP webhook receiver on 127.0.0.1 (uvicorn + Starlette) that records what it is sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailpulse.broker import free_port
from mailpulse.runtime import serve_asgi, wait_listening

HOLD = 0  # in ``statuses``: keep that request unanswered until ``release`` is set, then answer 503


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answers to give first, then 200
    received: list[dict[str, Any]] = field(default_factory=list)  # every body, answered 2xx or not
    accepted: list[dict[str, Any]] = field(default_factory=list)  # bodies answered 200
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: int = 0  # requests held now


@contextlib.asynccontextmanager
async def webhook_receiver(statuses: list[int] | None = None) -> AsyncIterator[Receiver]:
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}/hook", list(statuses or []))

    async def hook(request: Request) -> Response:
        body = orjson.loads(await request.body())
        receiver.received.append(body)
        status = receiver.statuses.pop(0) if receiver.statuses else 200
        if status == HOLD:
            receiver.held += 1
            await receiver.release.wait()
            receiver.held -= 1
            status = 503
        if status == 200:
            receiver.accepted.append(body)
        return Response("ok" if status == 200 else "no", status_code=status, headers={"retry-after": "1"})

    stop = asyncio.Event()
    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    server = asyncio.create_task(serve_asgi(app, "127.0.0.1", port, stop))
    await wait_listening("127.0.0.1", port)
    try:
        yield receiver
    finally:
        receiver.release.set()  # a held request must not keep the server from stopping
        stop.set()
        await server
