"""The edge before the body: signature headers and timestamps are refused before a byte of the body is
read, and the server's connection limit answers 503 past it. Real app, real publisher on the real
(Tansu) broker, a real uvicorn on loopback for the limit."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.types import Message

from ingest.app import IngestApp, IngestConfig, create_app
from ingest.paths import SENDGRID_EVENTS, TWILIO_EVENTS
from mailpulse.broker import free_port
from mailpulse.runtime import serve_ingest, wait_listening
from mailpulse.settings import Settings
from schemas.signatures import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    SendGridVerifier,
    TwilioVerifier,
    sign_sendgrid,
    sign_twilio,
    with_body_sha256,
)
from tests.integration.ingest.ingest_app import TOKEN, kafka_publisher

pytestmark = [pytest.mark.kafka]

BODY = b'[{"email":"ana@example.com","timestamp":1763900000,"event":"processed","smtp-id":"<a@b>"}]'


@contextlib.asynccontextmanager
async def ingest_app(settings: Settings, config: IngestConfig) -> AsyncIterator[IngestApp]:
    async with kafka_publisher(settings, partitions=1, timeout_s=3.0) as publisher:
        yield create_app(publisher, config)


async def call(
    app: IngestApp, path: str, headers: dict[str, str], query: str = ""
) -> tuple[int, dict[str, Any], int]:
    """POST ``BODY`` to ``app`` as a server would: the status, the JSON answer, and how many times the
    app asked for the body."""
    reads = 0
    answer: dict[str, Any] = {"status": None, "body": b""}

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "server": ("ingest.test", 80),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"ingest.test"), *raw],
    }
    await app(scope, receive, send)
    return int(answer["status"]), orjson.loads(answer["body"]), reads


def test_signature_headers_and_timestamp_are_refused_before_the_body_is_read(settings: Settings) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    config = IngestConfig(sendgrid=SendGridVerifier(key.public_key(), 300), twilio=TwilioVerifier(TOKEN))

    async def scenario() -> None:
        async with ingest_app(settings, config) as app:
            now = str(int(time.time()))
            stale = str(int(time.time()) - 400)
            signed = sign_sendgrid(key, now, BODY)
            unread = {
                "missing": (await call(app, SENDGRID_EVENTS, {}), 401),
                "no timestamp": (await call(app, SENDGRID_EVENTS, {SENDGRID_SIGNATURE_HEADER: signed}), 401),
                "stale": (
                    await call(
                        app,
                        SENDGRID_EVENTS,
                        {
                            SENDGRID_SIGNATURE_HEADER: sign_sendgrid(key, stale, BODY),
                            SENDGRID_TIMESTAMP_HEADER: stale,
                        },
                    ),
                    403,
                ),
                "not base64": (
                    await call(
                        app,
                        SENDGRID_EVENTS,
                        {SENDGRID_SIGNATURE_HEADER: "@@", SENDGRID_TIMESTAMP_HEADER: now},
                    ),
                    403,
                ),
                "twilio missing": (await call(app, TWILIO_EVENTS, {}), 401),
                "twilio no bodySHA256": (
                    await call(app, TWILIO_EVENTS, {TWILIO_SIGNATURE_HEADER: sign_twilio("x", TOKEN)}),
                    403,
                ),
            }
            for name, ((status, answer, reads), expected) in unread.items():
                assert (status, reads) == (expected, 0), (name, answer)
                assert answer["error"], name
            assert "outside ±300 s" in unread["stale"][0][1]["error"]
            # Headers that pass: the body is read, then its signature checked (this one is forged).
            forged = sign_sendgrid(ec.generate_private_key(ec.SECP256R1()), now, BODY)
            status, answer, reads = await call(
                app, SENDGRID_EVENTS, {SENDGRID_SIGNATURE_HEADER: forged, SENDGRID_TIMESTAMP_HEADER: now}
            )
            assert (status, reads) == (403, 1), answer
            assert answer["error"] == "signature does not match the body and timestamp"
            status, answer, reads = await call(
                app, SENDGRID_EVENTS, {SENDGRID_SIGNATURE_HEADER: signed, SENDGRID_TIMESTAMP_HEADER: now}
            )
            assert (status, reads) == (200, 1) and answer["accepted"] == 1, answer
            url = with_body_sha256(f"http://ingest.test{TWILIO_EVENTS}", BODY)
            query = url.split("?", 1)[1]
            status, answer, reads = await call(
                app, TWILIO_EVENTS, {TWILIO_SIGNATURE_HEADER: sign_twilio(url, "f" * 32)}, query
            )
            assert (status, reads) == (403, 1), answer

    asyncio.run(scenario())


async def status_of(port: int, path: str = "/healthz") -> int:
    """The status of one GET on a connection of its own (closed after it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        return int((await reader.readline()).split()[1])
    finally:
        writer.close()
        await writer.wait_closed()


def test_past_the_connection_limit_ingest_answers_503(settings: Settings) -> None:
    limited = settings.model_copy(update={"ingest_max_connections": 3, "ingest_host": "127.0.0.1"})
    assert settings.ingest_max_connections >= 100  # the default serves real providers' concurrency

    async def scenario() -> tuple[int, list[int], int]:
        assert limited.kafka_bootstrap is not None
        stop, port = asyncio.Event(), free_port()
        server = asyncio.create_task(serve_ingest(limited, limited.kafka_bootstrap, stop, port))
        try:
            await wait_listening("127.0.0.1", port)
            alone = await status_of(port)
            # Idle connections count: with two held open, a third connection reaches the limit.
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
            crowded = []
            for _ in range(50):  # bounded: the server accepts the held connections first
                crowded.append(await status_of(port))
                if crowded[-1] == 503:
                    break
                await asyncio.sleep(0.05)
            for _, writer in held:
                writer.close()
                await writer.wait_closed()
            after = 0
            for _ in range(50):  # bounded: the server notices the closed connections
                after = await status_of(port)
                if after == 200:
                    break
                await asyncio.sleep(0.05)
            return alone, crowded, after
        finally:
            stop.set()
            await server

    alone, crowded, after = asyncio.run(scenario())
    assert alone == 200
    assert crowded[-1] == 503, crowded
    assert after == 200
