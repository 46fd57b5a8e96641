"""HTTP/1.1 keep-alive load generator: pre-built request bytes, N connections, per-request latency.

Runs as its own process (``python -m bench.loadgen SPEC OUT``) pinned to the load core.
Closed loop (every connection sends its next request when the previous answer is in) or open loop
(requests start on a fixed schedule, ``rate`` per second, whatever the answers do). A general HTTP
client (httpx) spends more CPU per request than the servers under test, so this one only frames
requests and finds the end of each answer (status line, Content-Length).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from bench.layout import pin


@dataclass(frozen=True, slots=True)
class LoadSpec:
    host: str
    port: int
    path: str
    bodies: str  # file of request bodies, one per line
    events_per_body: list[int]
    connections: int
    duration_s: float
    warmup_s: float = 0.0
    rate: float | None = None  # open loop: requests started per second; None = closed loop
    start_at: float | None = None  # open loop: time.monotonic() of the first request
    cycle: bool = True  # reuse bodies when they run out (False: stop after the last one)
    core: int = 1


@dataclass(slots=True)
class LoadResult:
    requests: int = 0  # answered after the warmup
    ok: int = 0
    events_ok: int = 0
    events_ok_all: int = 0  # warm-up included: what the server's CPU time over the whole run served
    ok_all: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    acked: list[tuple[int, float]] = field(default_factory=list)  # open loop: (body index, 2xx time)


def request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP transport (uvloop's is no subclass)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        length = 0
        marker = head.find(b"content-length:")
        if marker >= 0:
            line_end = head.find(b"\r\n", marker)
            length = int(head[marker + 15 : line_end if line_end >= 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        del self.buffer[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    async def send(self, data: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


async def _connect(spec: LoadSpec) -> _Connection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(_Connection, spec.host, spec.port)
    return conn


async def run(spec: LoadSpec, bodies: list[bytes]) -> LoadResult:
    requests = [request_bytes(spec.host, spec.port, spec.path, b) for b in bodies]
    result = LoadResult()
    conns = [await _connect(spec) for _ in range(spec.connections)]
    start = time.monotonic() if spec.start_at is None else max(spec.start_at, time.monotonic())
    measure_from = start + spec.warmup_s
    stop_at = measure_from + spec.duration_s
    counter = iter(range(sys.maxsize))

    async def one(conn: _Connection, index: int) -> None:
        sent = time.monotonic()
        try:
            status = await conn.send(requests[index % len(requests)])
        except ConnectionError:
            status = 0
        done = time.monotonic()
        if 200 <= status < 300:
            result.ok_all += 1
            result.events_ok_all += spec.events_per_body[index % len(requests)]
        if sent < measure_from:
            return
        result.requests += 1
        if 200 <= status < 300:
            result.ok += 1
            result.events_ok += spec.events_per_body[index % len(requests)]
            result.latencies_ms.append((done - sent) * 1000)
            if spec.rate is not None:
                result.acked.append((index, done))
        else:
            result.errors[str(status)] = result.errors.get(str(status), 0) + 1

    async def closed_loop(conn: _Connection) -> None:
        while time.monotonic() < stop_at and not conn.closed:
            index = next(counter)
            if not spec.cycle and index >= len(requests):
                return
            await one(conn, index)

    async def open_loop() -> None:
        assert spec.rate is not None
        idle: asyncio.Queue[_Connection] = asyncio.Queue()
        for conn in conns:
            idle.put_nowait(conn)
        tasks = set()
        total = len(requests) if not spec.cycle else sys.maxsize
        for index in range(total):
            due = start + index / spec.rate
            if due >= stop_at:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            conn = await idle.get()
            if conn.closed:  # the server hung up: replace the connection
                conn = await _connect(spec)

            async def send(conn: _Connection = conn, index: int = index) -> None:
                await one(conn, index)
                idle.put_nowait(conn)

            task = asyncio.create_task(send())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    if spec.rate is None:
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        await asyncio.gather(*(closed_loop(c) for c in conns))
    else:
        await open_loop()
    result.elapsed_s = time.monotonic() - measure_from
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    return result


def main(argv: list[str]) -> int:
    spec = LoadSpec(**orjson.loads(Path(argv[0]).read_bytes()))
    pin(spec.core)
    import uvloop

    result = uvloop.run(run(spec, Path(spec.bodies).read_bytes().split(b"\n")))
    Path(argv[1]).write_bytes(orjson.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
