"""Body limits hold while bytes arrive: an endless body is cut at the limit with 413, and memory stays
far below what the sender pushes (tracemalloc measures every Python allocation of the request)."""

from __future__ import annotations

import asyncio
import contextlib
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import uvicorn

from ingest.app import IngestConfig, create_app
from ingest.publisher import KafkaPublisher, create_producer
from mailpulse.broker import free_port
from mailpulse.runtime import wait_listening
from mailpulse.settings import Settings
from schemas.inbound import INBOUND_MAX_BYTES
from tests.ingest.conftest import ingest_client
from tests.ingest.mail import inbound_fields, multipart

pytestmark = [pytest.mark.kafka]

MB = 1024 * 1024
CHUNK = b"\x00" * (64 * 1024)
PUSHED = 60 * MB  # three times the inbound limit
BOUNDARY = "limitboundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@dataclass
class Endless:
    """A request body of ``total`` bytes, produced chunk by chunk; ``sent`` counts what was pulled."""

    head: bytes
    total: int
    sent: int = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.sent = len(self.head)
        yield self.head
        while self.sent < self.total:
            self.sent += len(CHUNK)
            yield b" " * len(CHUNK)  # a new object each time, so holding chunks would show as memory


def attachment_head(fields: dict[str, str]) -> bytes:
    body, _ = multipart(fields, boundary=BOUNDARY)
    head = body.removesuffix(f"--{BOUNDARY}--\r\n".encode())
    return (
        head
        + (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="attachment1"; filename="video.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode()
    )


async def measured(call: Callable[[], Awaitable[int]]) -> tuple[int, int]:
    """(result of ``call``, peak bytes allocated while it ran)."""
    tracemalloc.start()
    try:
        result = await call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_oversize_inbound_mail_is_cut_at_20_mb_without_buffering(settings: Settings) -> None:
    async def scenario() -> None:
        async with ingest_client(settings) as client:
            endless = Endless(attachment_head(inbound_fields(attachments=())), PUSHED)

            async def post_endless() -> int:
                answer = await client.post(
                    "/webhooks/sendgrid/inbound", content=endless, headers={"content-type": MULTIPART}
                )
                assert answer.json()["error"].startswith(f"body larger than {INBOUND_MAX_BYTES} bytes")
                return answer.status_code

            status, peak = await measured(post_endless)
            print(
                f"\ninbound: pushed {endless.sent / MB:.1f} MB of {PUSHED / MB:.0f}, peak {peak / MB:.2f} MB"
            )
            assert status == 413
            assert endless.sent <= INBOUND_MAX_BYTES + 2 * len(CHUNK)  # reading stopped at the limit
            assert peak < 4 * MB  # the attachment went to a spool file, never to memory

            # Just under the limit, the same mail is stored, still without holding it in memory.
            tail = f"\r\n--{BOUNDARY}--\r\n".encode()
            head = attachment_head(inbound_fields(attachments=()))
            fits = INBOUND_MAX_BYTES - len(head) - len(tail) - 1

            async def body() -> AsyncIterator[bytes]:
                yield head
                for _ in range(fits // len(CHUNK)):
                    yield CHUNK
                yield b"\x00" * (fits % len(CHUNK)) + tail

            async def post_fitting() -> int:
                answer = await client.post(
                    "/webhooks/sendgrid/inbound", content=body(), headers={"content-type": MULTIPART}
                )
                assert answer.json()["attachments"] == 1, answer.text
                return answer.status_code

            status, peak = await measured(post_fitting)
            print(f"inbound: a {INBOUND_MAX_BYTES / MB:.0f} MB mail stored, peak {peak / MB:.2f} MB")
            assert status == 200 and peak < 4 * MB

    asyncio.run(scenario())


def test_oversize_event_batch_is_cut_at_its_limit(settings: Settings) -> None:
    limit = 1 * MB

    async def scenario() -> None:
        async with ingest_client(settings, IngestConfig(max_body_bytes=limit)) as client:
            endless = Endless(b"[", PUSHED)

            async def post() -> int:
                answer = await client.post(
                    "/webhooks/sendgrid/events", content=endless, headers={"content-type": "application/json"}
                )
                return answer.status_code

            status, peak = await measured(post)
            print(f"\nbatch: pushed {endless.sent / MB:.1f} MB of {PUSHED / MB:.0f}, peak {peak / MB:.2f} MB")
            assert status == 413 and endless.sent <= limit + 2 * len(CHUNK)
            assert peak < 4 * MB

    asyncio.run(scenario())


@contextlib.asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[int]:
    """The ingest app behind a real uvicorn on loopback; yields its port."""
    assert settings.kafka_bootstrap is not None
    producer = create_producer(settings.kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    port = free_port()
    publisher = KafkaPublisher(producer, settings.status_topic, settings.deadletter_topic, 3.0)
    config = uvicorn.Config(
        create_app(publisher), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await wait_listening("127.0.0.1", port)
        yield port
    finally:
        server.should_exit = True
        await task
        await producer.stop()


def test_oversize_inbound_over_real_http_is_answered_before_the_upload_ends(settings: Settings) -> None:
    """Through uvicorn: a chunked upload of 60 MB gets its 413 while the client is still sending."""

    async def scenario() -> tuple[bytes, int]:
        async with served(settings) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /webhooks/sendgrid/inbound HTTP/1.1\r\nHost: ingest\r\nTransfer-Encoding: chunked\r\n"
                + f"Content-Type: {MULTIPART}\r\n\r\n".encode()
            )
            answer = asyncio.create_task(reader.read(4096))
            sent = 0
            with contextlib.suppress(ConnectionError):
                for piece in (
                    attachment_head({"headers": "Subject: big"}),
                    *([CHUNK] * (PUSHED // len(CHUNK))),
                ):
                    if answer.done():
                        break
                    writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    await writer.drain()
                    sent += len(piece)
            head = await asyncio.wait_for(answer, 10)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            return head, sent

    head, sent = asyncio.run(scenario())
    print(f"\nreal HTTP: 413 after {sent / MB:.1f} MB sent of {PUSHED / MB:.0f}")
    assert head.startswith(b"HTTP/1.1 413")
    assert sent < PUSHED  # answered mid-upload: the server never waited for the whole body
