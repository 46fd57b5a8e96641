"""Body limits hold while bytes arrive: an endless body is cut at the limit with 413, and memory stays
far below what the sender pushes (tracemalloc measures every Python allocation of the request). An
event batch holds a bounded number of elements, and a flood of invalid ones costs one dead letter."""

from __future__ import annotations

import asyncio
import contextlib
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import uvicorn

from ingest.app import IngestConfig, create_app
from ingest.elements import DEFAULT_MAX_ELEMENTS, MAX_ERRORS
from mailpulse.broker import free_port
from mailpulse.runtime import wait_listening
from mailpulse.settings import Settings
from schemas.inbound import INBOUND_MAX_BYTES
from tests.ingest.mail import inbound_fields, multipart
from tests.integration.groundtruth import read_all
from tests.integration.ingest.ingest_app import ingest_client, kafka_publisher, published
from tests.webhook_events import sendgrid_event

pytestmark = [pytest.mark.kafka]

MB = 1024 * 1024
CHUNK = b"\x00" * (64 * 1024)
PUSHED = 60 * MB  # three times the inbound limit
BOUNDARY = "limitboundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
SG, JSON = "/webhooks/sendgrid/events", {"content-type": "application/json"}


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
    async with kafka_publisher(settings, timeout_s=3.0) as publisher:
        port = free_port()
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


async def records_in(settings: Settings, topic: str) -> int:
    """How many records ``topic`` holds: read to the end of its log, the high watermarks the fetches
    report (Tansu's ListOffsets counts record batches, not records). Counted once the ingest client's
    producer has stopped, the log holds everything that was ever published: none can come later."""
    assert settings.kafka_bootstrap is not None
    return len(await read_all(settings.kafka_bootstrap, topic, 10.0))


def valid(n: int) -> dict[str, Any]:
    return sendgrid_event("delivered", n, n)


def test_a_batch_over_the_element_bound_is_refused_before_validation(settings: Settings) -> None:
    """One element over the bound: 413 with the count and the bound, nothing validated or published.
    At the bound: validated, thousands of rejected elements make one dead letter and a short answer."""

    async def scenario() -> tuple[int, int, list[dict[str, Any]]]:
        async with ingest_client(settings) as client:
            over = await client.post(
                SG, content=orjson.dumps([valid(1)] * (DEFAULT_MAX_ELEMENTS + 1)), headers=JSON
            )
            assert over.status_code == 413
            assert (over.json()["elements"], over.json()["max_elements"]) == (10_001, 10_000)
            assert "10001 elements" in over.json()["error"] and "10000" in over.json()["error"]
            assert await records_in(settings, settings.status_topic) == 0
            assert await records_in(settings, settings.deadletter_topic) == 0

            batch: list[Any] = [0] * (DEFAULT_MAX_ELEMENTS - 5)
            batch[100:100] = [valid(n) for n in range(5)]
            del batch[-5:]
            batch += [valid(n) for n in range(5, 10)]
            assert len(batch) == DEFAULT_MAX_ELEMENTS
            at = await client.post(SG, content=orjson.dumps(batch), headers=JSON)
            assert at.status_code == 200, at.text
            answer = at.json()
            assert (answer["accepted"], answer["rejected"]) == (10, 9_990)
            assert len(answer["errors"]) == MAX_ERRORS and answer["errors_total"] == 9_990
            assert [e["index"] for e in answer["errors"][:3]] == [0, 1, 2]
            dead = await published(settings, 1, settings.deadletter_topic)
            # Elements 100-104 and 9,995-9,999 were validated in different chunks, received at once.
            received = {e["received_at"] for e in await published(settings, 10)}
            assert len(received) == 1, received
        return (  # the producer stopped: the counts include anything the 413 might have published
            await records_in(settings, settings.status_topic),
            await records_in(settings, settings.deadletter_topic),
            dead,
        )

    events, letters, [dead] = asyncio.run(scenario())
    assert (events, letters) == (10, 1)
    assert dead["flood"] is True
    assert (dead["elements"], dead["accepted"], dead["rejected"]) == (10_000, 10, 9_990)
    assert dead["problem_counts"] == [
        {"field": "(event)", "message": "must be a JSON object", "count": 9_990}
    ]
    assert [f["index"] for f in dead["first"]] == list(range(10))
    assert all(f["payload"] == 0 and f["problems"] for f in dead["first"])


# ~2.6 million elements: the most a 5 MB body holds.
FLOOD = b"[" + b",".join([b"0"] * (5 * MB // 2 - 2)) + b"]"


def test_a_5_mb_flood_of_invalid_elements_costs_one_dead_letter_and_bounded_memory(
    settings: Settings,
) -> None:
    """With the element bound lifted, a body of millions of invalid elements is validated in chunks
    (the loop runs between them), yields one dead letter, a short answer, and no per-element state:
    the request's peak memory stays within a few times what reading the array takes."""
    elements = FLOOD.count(b",") + 1
    tracemalloc.start()
    orjson.loads(FLOOD)
    reading = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    async def scenario() -> tuple[int, dict[str, Any], int, int]:
        async with ingest_client(settings, IngestConfig(max_elements=10**7)) as client:
            ticks = 0
            done = asyncio.Event()

            async def ticker() -> None:  # counts the loop's turns while the post is answered
                nonlocal ticks
                while not done.is_set():
                    ticks += 1
                    await asyncio.sleep(0)

            async def post() -> int:
                task = asyncio.create_task(ticker())
                answer = await client.post(SG, content=FLOOD, headers=JSON)
                done.set()
                await task
                assert answer.status_code == 422, answer.text[:300]
                body = answer.json()
                assert (body["rejected"], body["errors_total"]) == (elements, elements)
                assert len(body["errors"]) == MAX_ERRORS and len(answer.content) < 16 * 1024
                return answer.status_code

            _, peak = await measured(post)
            [dead] = await published(settings, 1, settings.deadletter_topic)
        return ticks, dead, peak, await records_in(settings, settings.deadletter_topic)

    ticks, dead, peak, letters = asyncio.run(scenario())
    print(
        f"\nflood: {elements:,} elements, peak {peak / MB:.1f} MB "
        f"(reading {reading / MB:.1f} MB), {ticks:,} loop turns"
    )
    assert letters == 1 and (dead["flood"], dead["rejected"], dead["elements"]) == (True, elements, elements)
    assert len(dead["first"]) == 10
    assert peak < 1.5 * reading
    # The loop turned between chunks (thousands of them); in one go, it turns a handful of times.
    assert ticks > 1_000
