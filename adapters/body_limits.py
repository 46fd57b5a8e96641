"""Body limits enforced while bytes arrive: nothing reads past the limit, nothing buffers a whole
oversized body. The caller answers 413 on ``BodyTooLarge``."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.limit = limit


def check_declared_length(headers: Mapping[str, str], limit: int) -> None:
    """Refuse at once when Content-Length already announces more than ``limit``."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes (JSON batches are small enough to hold)."""
    check_declared_length(request.headers, limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # stop reading as soon as the limit is passed
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(receive: Receive, limit: int, declared_length: str | None) -> bytes:
    """``read_limited`` for a plain ASGI handler: the whole body from ``receive``, at most ``limit``
    bytes (BodyTooLarge), ClientDisconnect when the client left first; ``declared_length`` is the
    Content-Length header, refused at once when over the limit."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise BodyTooLarge(limit)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:  # stop reading as soon as the limit is passed
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def limited_receive(
    receive: Receive, limit: int, on_chunk: Callable[[bytes], object] | None = None
) -> Receive:
    """``receive`` that raises BodyTooLarge once more than ``limit`` body bytes went through it, so a
    streaming consumer (the multipart parser) stops at the limit; ``on_chunk`` sees every body chunk
    (a signature's running hash)."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                raise BodyTooLarge(limit)
            if on_chunk is not None and chunk:
                on_chunk(chunk)
        return message

    return wrapped
