"""A TCP proxy on loopback that a test can cut (drop every connection, refuse new ones) and restore:
an unreachable Kafka without restarting the broker (Tansu loses its topics on restart). Or pause it
(connections stay open, nothing is forwarded) and resume: a Kafka whose acknowledgements stall."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from mailpulse.broker import EmbeddedBroker, free_port


class CuttableProxy:
    def __init__(self, port: int, target_port: int) -> None:
        self.port = port
        self.target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)
        return self

    async def cut(self) -> None:
        """Close the listener (new connections are refused) and abort every open connection; returns
        once their sockets are closed (an abort closes the socket on a later turn of the loop, so a
        blocking call right after would otherwise leave the broker's side open)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        writers = list(self._writers)
        for writer in writers:
            writer.transport.abort()
        self._writers.clear()
        for writer in writers:
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def restore(self) -> None:
        await self.start()

    def pause(self) -> None:
        """Hold every byte in both directions; connections stay open."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def _connect(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, upstream_writer}
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer, client_writer),
            self._pipe(upstream_reader, client_writer, upstream_writer),
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, other: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for side in (writer, other):
                self._writers.discard(side)
                side.transport.abort()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def broker_behind_proxy(log_path: Path) -> AsyncIterator[tuple[EmbeddedBroker, CuttableProxy]]:
    """A Tansu broker that advertises a started proxy in front of it; on exit the proxy flows again and
    is cut (its connections closed before the broker stops)."""
    proxy_port = free_port()
    with EmbeddedBroker(advertised_port=proxy_port, log_path=log_path) as broker:
        proxy = await CuttableProxy(proxy_port, broker.port).start()
        try:
            yield broker, proxy
        finally:
            proxy.resume()
            await proxy.cut()
