"""The OpenAPI description is served, names every route, and every reference in it resolves."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Sequence
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from adapters.publisher import Record, Rejected
from ingest.app import IngestConfig, create_app
from ingest.openapi import _NOT_BLANK, _SMTP_ID
from schemas.event import CanonicalEvent
from schemas.sendgrid import x_message_id

REFUSALS = {"400", "401", "403", "413", "415", "422", "503"}


class Unused:
    """The description needs no broker; nothing is published here."""

    max_record_bytes = 1024 * 1024

    async def publish(self, events: Sequence[CanonicalEvent], rejected: Sequence[Rejected]) -> None:
        raise AssertionError("nothing is published by these requests")

    async def publish_records(self, records: Sequence[Record], rejected: Sequence[Rejected]) -> None:
        raise AssertionError("nothing is published by these requests")

    async def unready(self) -> list[str]:
        return ["no broker"]


class Recording(Unused):
    """Takes what it is given (dead letters here), as a broker that acknowledges at once."""

    def __init__(self) -> None:
        self.rejected: list[tuple[int, object]] = []

    async def publish_records(self, records: Sequence[Record], rejected: Sequence[Rejected]) -> None:
        assert not records
        self.rejected += [(r.index, r.payload) for r in rejected]


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_openapi_is_served_and_complete() -> None:
    app = create_app(Unused(), IngestConfig(max_body_bytes=1234, inbound_max_bytes=5678))

    async def fetch() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            answer = await client.get("/openapi.json")
            assert answer.status_code == 200
            document: dict[str, Any] = answer.json()
            return document

    document = asyncio.run(fetch())
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for route in app.routes:
        if isinstance(route, Route):
            assert route.methods is not None
            assert {m.lower() for m in route.methods} - {"head"} <= set(paths[route.path]), route.path
        elif isinstance(route, Mount):
            assert f"{route.path}/" in paths
    for path in ("/webhooks/sendgrid/events", "/webhooks/twilio/events", "/webhooks/sendgrid/inbound"):
        responses = paths[path]["post"]["responses"]
        assert set(responses) == {"200", *REFUSALS}, path
        for code in REFUSALS:
            schema = responses[code]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            assert "error" in document["components"]["schemas"][schema]["required"]
        assert "Retry-After" in responses["503"]["headers"]
    assert "1234 bytes" in paths["/webhooks/sendgrid/events"]["post"]["responses"]["413"]["description"]
    assert "5678 bytes" in paths["/webhooks/sendgrid/inbound"]["post"]["responses"]["413"]["description"]
    for ref in refs(document):
        assert ref.rsplit("/", 1)[1] in document["components"]["schemas"], ref


def test_event_endpoints_answer_alike_directly_and_through_the_router() -> None:
    """IngestApp hands POSTs on the event paths straight to their endpoint; the router reaches the same
    endpoint (and still answers other methods)."""
    publisher = Recording()
    app = create_app(publisher, IngestConfig(max_body_bytes=16))
    routed = Starlette(routes=app.routes)  # the same routes without the direct dispatch

    async def answers(target: ASGIApp) -> list[tuple[int, bytes, str | None]]:
        transport = httpx.ASGITransport(app=target)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            out = []
            for path in ("/webhooks/sendgrid/events", "/webhooks/twilio/events"):
                for method, headers, body in (
                    ("POST", {"content-type": "text/plain"}, b"[]"),  # 415
                    ("POST", {"content-type": "application/json"}, b"[" * 17),  # 413
                    ("POST", {"content-type": "application/json; charset=utf-8"}, b"[1"),  # 400
                    ("POST", {"content-type": "application/json"}, b"{}"),  # 400: not an array
                    ("POST", {"content-type": "application/json"}, b"[1]"),  # 422
                    ("GET", {}, b""),  # 405
                ):
                    answer = await client.request(method, path, headers=headers, content=body)
                    out.append((answer.status_code, answer.content, answer.headers.get("content-type")))
            return out

    direct = asyncio.run(answers(app))
    assert publisher.rejected == [(0, 1), (0, 1)]  # the 422s' elements, on the dead-letter topic
    through_router = asyncio.run(answers(routed))
    assert direct == through_router
    assert publisher.rejected == [(0, 1)] * 4
    assert [code for code, _, _ in direct[:6]] == [415, 413, 400, 400, 422, 405]


def test_sendgrid_id_patterns_say_what_the_parser_takes() -> None:
    """The description's patterns for sg_message_id and smtp-id against the parser's rule, on every
    string of up to five characters from those that matter (blanks, the brackets, "@")."""
    alphabet = [" ", "\t", "\x1c", "\u3000", "<", ">", "@", "x"]
    for n in range(6):
        for chars in itertools.product(alphabet, repeat=n):
            text = "".join(chars)
            assert (re.search(_SMTP_ID, text) is not None) == (x_message_id(None, text) is not None), text
            assert (re.search(_NOT_BLANK, text) is not None) == (x_message_id(text, None) is not None), text
