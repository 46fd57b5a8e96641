"""A local, fsync'd log of what ingest and the poller acknowledge, for a broker that keeps nothing.

The embedded broker (Tansu's memory build) loses every record when its process dies, and a provider
never retries what was acknowledged. With a journal, a publisher acknowledges a request only after its
records are both written here (fsync'd) and acknowledged by Kafka. At the next start the records of
every segment left from earlier runs are published again; what was loaded already is absorbed
downstream (event-keyed tables, the idempotent state merge). A segment is deleted once it is sealed,
every publish that wrote into it has finished, and the processors' consumer group has committed past
the last record of it on every partition of the status topic.

Writes are group-committed: appends queue bytes, one writer task writes and fsyncs whatever has queued
meanwhile in a thread, and resolves every waiter of that write at once.

Entry format: ``<u32 body length><u32 crc32(body)>`` then the body ``<u16 topic length><u32 key
length or NO_KEY><topic><key><value>``. A torn or corrupt tail (a crash during a write, before any of
its requests was acknowledged) ends a segment's reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

FRAME = struct.Struct("<II")
HEAD = struct.Struct("<HI")
NO_KEY = 0xFFFFFFFF
SUFFIX = ".journal"
# One topic's positions: partition -> the offset after its last acknowledged record.
Ends = dict[int, int]
Entry = tuple[str, bytes | None, bytes]  # topic, key, value


class JournalBusy(RuntimeError):
    """Another process holds this journal (and so, on the embedded default, the data directory)."""


def encode_entry(topic: str, key: bytes | None, value: bytes) -> bytes:
    name = topic.encode()
    body = HEAD.pack(len(name), NO_KEY if key is None else len(key)) + name + (key or b"") + value
    return FRAME.pack(len(body), zlib.crc32(body)) + body


def read_entries(data: bytes) -> Iterator[Entry]:
    """The entries of one segment's bytes, up to the first torn or corrupt one."""
    position, size = 0, len(data)
    while position < size:
        if position + FRAME.size > size:
            break
        length, crc = FRAME.unpack_from(data, position)
        start, end = position + FRAME.size, position + FRAME.size + length
        if end > size or length < HEAD.size or zlib.crc32(data[start:end]) != crc:
            break
        name_len, key_len = HEAD.unpack_from(data, start)
        cursor = start + HEAD.size
        topic = data[cursor : cursor + name_len].decode()
        cursor += name_len
        key = None
        if key_len != NO_KEY:
            key = data[cursor : cursor + key_len]
            cursor += key_len
        yield topic, key, data[cursor:end]
        position = end
    if position < size:  # never acknowledged: its write had not finished
        log.warning("journal segment: torn or corrupt entry at byte %d of %d, rest ignored", position, size)


def read_segment(segment: Segment) -> Iterator[Entry]:
    return read_entries(segment.path.read_bytes())


@dataclass(eq=False)
class Segment:
    seq: int
    path: Path
    opened_at: float
    size: int = 0
    sealed: bool = False
    inflight: int = 0  # publishes that wrote here and have not finished
    ends: dict[str, Ends] = field(default_factory=dict)

    def settled(self) -> bool:
        return self.sealed and self.inflight == 0


@dataclass(eq=False)
class Ticket:
    """One publish's place in the journal: await ``synced`` before acknowledging the sender, then
    report the Kafka positions (``Journal.acknowledged``) and always ``Journal.release`` it."""

    segment: Segment
    synced: asyncio.Future[None]


class Journal:
    def __init__(
        self,
        directory: Path,
        segment_bytes: int = 64 * 1024 * 1024,
        seal_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.seal_after_s = seal_after_s
        self.clock = clock
        self._lock = open(directory / "LOCK", "a+b")  # noqa: SIM115 - held for the journal's life
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock.close()
            raise JournalBusy(f"{directory} is used by another mailpulse process") from exc
        found = sorted(directory.glob(f"*{SUFFIX}"))
        # Segments of earlier runs: their records are published again before anything new.
        self.previous = [Segment(int(p.stem), p, 0.0, p.stat().st_size, sealed=True) for p in found]
        self.segments: list[Segment] = list(self.previous)
        self._next_seq = (self.previous[-1].seq + 1) if self.previous else 1
        self._current: Segment | None = None
        self._queue: list[tuple[Segment, bytes, asyncio.Future[None]]] = []
        self._files: dict[int, BinaryIO] = {}
        self._writer: asyncio.Task[None] | None = None

    # -- appending -------------------------------------------------------------------------------

    def append(self, entries: Iterable[Entry]) -> Ticket:
        """Queue ``entries`` for the next group write; the ticket's ``synced`` resolves once they are
        on disk (or fails with the write's error)."""
        data = b"".join(encode_entry(topic, key, value) for topic, key, value in entries)
        segment = self._segment_for(len(data))
        segment.size += len(data)
        segment.inflight += 1
        synced: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((segment, data, synced))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        return Ticket(segment, synced)

    def acknowledged(self, ticket: Ticket, positions: Mapping[str, Mapping[int, int]]) -> None:
        """Kafka acknowledged the ticket's records at ``positions`` (topic -> partition -> last
        offset): the segment may only go once the group committed past them."""
        _extend(ticket.segment, positions)

    def release(self, ticket: Ticket) -> None:
        """The publish of ``ticket`` finished, acknowledged or not (a refused request is retried by
        its sender and journaled again)."""
        ticket.segment.inflight -= 1

    def _segment_for(self, size: int) -> Segment:
        current = self._current
        if current is not None and current.size > 0 and current.size + size > self.segment_bytes:
            self._seal(current)
            current = None
        if current is None:
            current = Segment(self._next_seq, self.directory / f"{self._next_seq:012d}{SUFFIX}", self.clock())
            self._next_seq += 1
            self.segments.append(current)
            self._current = current
        return current

    def _seal(self, segment: Segment) -> None:
        segment.sealed = True
        if self._current is segment:
            self._current = None

    def seal_due(self) -> None:
        """Seal the open segment once it is old enough, so that it can be trimmed."""
        current = self._current
        if current is not None and current.size > 0 and self.clock() - current.opened_at >= self.seal_after_s:
            self._seal(current)

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await asyncio.to_thread(self._write, [(s, d) for s, d, _ in batch])
            except Exception as exc:
                log.error("journal write failed: %r", exc)
                for _, _, synced in batch:
                    if not synced.done():
                        synced.set_exception(exc)
            else:
                for _, _, synced in batch:
                    if not synced.done():
                        synced.set_result(None)

    def _write(self, chunks: Sequence[tuple[Segment, bytes]]) -> None:
        touched: dict[int, BinaryIO] = {}
        for segment, data in chunks:
            handle = self._files.get(segment.seq)
            if handle is None:
                handle = self._files[segment.seq] = open(segment.path, "ab")  # noqa: SIM115
                _sync_directory(self.directory)  # the new file's name survives a power cut too
            handle.write(data)
            touched[segment.seq] = handle
        for handle in touched.values():
            handle.flush()
            os.fdatasync(handle.fileno())
        # A sealed segment takes no new appends: its file closes (reopened only for chunks queued
        # just before the seal).
        sealed = {segment.seq for segment, _ in chunks if segment.sealed}
        for seq in sealed & touched.keys():
            self._files.pop(seq).close()

    # -- replay and trimming ---------------------------------------------------------------------

    def trimmable(self) -> bool:
        """Some segment is settled and may be deleted once the group commits past it."""
        return any(s.settled() for s in self.segments if s not in self.previous)

    def replayed(self, positions: Mapping[str, Mapping[int, int]]) -> None:
        """The previous segments' records were published again at ``positions``."""
        for segment in self.previous:
            _extend(segment, positions)
        self.previous = []

    def trim(self, topic: str, committed: Mapping[int, int]) -> list[Segment]:
        """Delete every settled segment whose records on ``topic`` the group has committed past."""
        gone = []
        for segment in list(self.segments):
            if segment in self.previous or not segment.settled():
                continue
            ends = segment.ends.get(topic, {})
            if all(committed.get(partition, 0) >= end for partition, end in ends.items()):
                handle = self._files.pop(segment.seq, None)
                if handle is not None:
                    handle.close()
                segment.path.unlink(missing_ok=True)
                self.segments.remove(segment)
                gone.append(segment)
        return gone

    def partitions(self, topic: str) -> set[int]:
        """The partitions of ``topic`` that kept segments wrote to."""
        return {partition for s in self.segments for partition in s.ends.get(topic, {})}

    @property
    def bytes_kept(self) -> int:
        return sum(s.size for s in self.segments)

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        self._lock.close()


def forget_segments(directory: Path) -> None:
    """Delete every segment under ``directory`` (a run that starts afresh on purpose, as the demo)."""
    for path in directory.glob(f"*{SUFFIX}"):
        path.unlink()


def _extend(segment: Segment, positions: Mapping[str, Mapping[int, int]]) -> None:
    for topic, offsets in positions.items():
        ends = segment.ends.setdefault(topic, {})
        for partition, last in offsets.items():
            if last + 1 > ends.get(partition, 0):
                ends[partition] = last + 1


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
