"""A synchronous client for an ASGI app, over httpx's ASGITransport (no server, no socket)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.types import ASGIApp


class ApiClient:
    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.headers = headers or {}

    def get(self, path: str, params: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
        async def request() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get(path, params=params, headers={**self.headers, **(headers or {})})

        return asyncio.run(request())
