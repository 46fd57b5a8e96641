"""Measurement 8: how long a flood of invalid elements holds ingest's event loop.

A running ingest (its own process, on the server core) is posted one flood body at a time while a
probe on the load side sends ``GET /healthz`` on a keep-alive connection, one after the other. Every
answer waits for the loop, so the longest probe wait during a flood is the longest stall it caused
(plus one small request). Bodies: 5 MB of ``0`` elements (the most elements 5 MB holds), refused by
the element bound after reading; the same body with the bound lifted (validated in chunks); and
``{}`` elements at the bound (each takes the canonical parser's path, the slowest per element).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson

from bench.http import start_server, stop_server
from bench.loadgen import request_bytes
from mailpulse.broker import free_port

HOST = "127.0.0.1"
PATH = "/webhooks/sendgrid/events"
IDLE_S = 0.3  # probe alone first: what a wait is without a flood
BODY_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FloodFigures:
    name: str
    elements: int
    status: int
    answer_ms: float  # from sending the body to its answer
    longest_wait_ms: float  # the longest /healthz answer while the flood was being answered
    idle_longest_ms: float  # the longest /healthz answer before it
    read_ms: float  # orjson.loads of the body alone, in the bench process


def zeros(size: int = BODY_BYTES) -> bytes:
    """The most elements ``size`` bytes of JSON array hold: ``[0,0,...]``."""
    return b"[" + b",".join([b"0"] * ((size - 1) // 2)) + b"]"


def empty_objects(count: int) -> bytes:
    return b"[" + b",".join([b"{}"] * count) + b"]"


async def _answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return int(head[9:12])


async def _probe(port: int, waits: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """(sent at, answer wait) of each /healthz, one after the other, ~1 ms apart, until ``stop``."""
    reader, writer = await asyncio.open_connection(HOST, port)
    request = f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    try:
        while not stop.is_set():
            sent = time.perf_counter()
            writer.write(request)
            await _answer(reader)
            waits.append((sent, time.perf_counter() - sent))
            await asyncio.sleep(0.001)
    finally:
        writer.close()


async def _flood(port: int, name: str, body: bytes) -> FloodFigures:
    elements = len(orjson.loads(body))
    started = time.perf_counter()
    orjson.loads(body)
    read_ms = (time.perf_counter() - started) * 1000
    waits: list[tuple[float, float]] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(_probe(port, waits, stop))
    await asyncio.sleep(IDLE_S)
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        sent = time.perf_counter()
        writer.write(request_bytes(HOST, port, PATH, body))
        status = await _answer(reader)
        answered = time.perf_counter()
    finally:
        writer.close()
        stop.set()
        await probe
    idle = [wait for at, wait in waits if at < sent]
    # A probe request in flight when the body was sent waited for the flood too.
    during = [wait for at, wait in waits if at + wait >= sent and at <= answered]
    return FloodFigures(
        name=name,
        elements=elements,
        status=status,
        answer_ms=(answered - sent) * 1000,
        longest_wait_ms=max(during, default=0.0) * 1000,
        idle_longest_ms=max(idle, default=0.0) * 1000,
        read_ms=read_ms,
    )


async def measure(bootstrap: str, topic: str, max_elements: int) -> list[FloodFigures]:
    """Each flood on a fresh ingest: with the default element bound (``max_elements``), then lifted."""
    body = zeros()
    figures = []
    for lifted, name, flood in [
        (False, "5 MB of 0s, over the bound", body),
        (False, "{}s at the bound", empty_objects(max_elements)),
        (True, "5 MB of 0s, bound lifted", body),
    ]:
        port = free_port()
        extra = ["--max-batch-elements", str(len(body))] if lifted else []
        server = await start_server("ours", bootstrap, topic, port, extra)
        try:
            figures.append(await _flood(port, name, flood))
        finally:
            await stop_server(server)
    return figures
