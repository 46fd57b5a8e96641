"""The journal as files on disk: what is appended is read back exactly, a torn tail is ignored, a
segment goes only once it is sealed, settled and committed past, and one process holds it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.journal import (
    Entry,
    Journal,
    JournalBusy,
    encode_entry,
    forget_segments,
    read_entries,
    read_segment,
)

TOPIC = "mailpulse.email-status"

entries = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=40),
        st.one_of(st.none(), st.binary(max_size=60)),
        st.binary(max_size=300),
    ),
    max_size=30,
)


@given(entries)
def test_entries_read_back_exactly(written: list[Entry]) -> None:
    data = b"".join(encode_entry(*entry) for entry in written)
    assert list(read_entries(data)) == written


@given(entries, st.data())
def test_a_torn_tail_ends_the_reading(written: list[Entry], data: st.DataObject) -> None:
    """A crash mid-write leaves whole entries and then part of one: the part is never read."""
    encoded = [encode_entry(*entry) for entry in written]
    whole = data.draw(st.integers(0, len(encoded)))
    torn = b""
    if whole < len(encoded):
        torn = encoded[whole][: data.draw(st.integers(0, len(encoded[whole]) - 1))]
    assert list(read_entries(b"".join(encoded[:whole]) + torn)) == written[:whole]


def test_a_corrupt_entry_ends_the_reading() -> None:
    first, second = encode_entry(TOPIC, b"k1", b"v1"), encode_entry(TOPIC, b"k2", b"v2")
    damaged = bytearray(first + second)
    damaged[len(first) + 12] ^= 0xFF  # a byte of the second entry's body
    assert list(read_entries(bytes(damaged))) == [(TOPIC, b"k1", b"v1")]


async def _append(journal: Journal, written: list[Entry]) -> None:
    ticket = journal.append(written)
    await ticket.synced
    journal.acknowledged(ticket, {TOPIC: {0: 9}})
    journal.release(ticket)


def test_appends_survive_a_reopen_as_previous_segments(tmp_path: Path) -> None:
    written = [(TOPIC, b"m1", b"first"), ("mailpulse.deadletter", None, b"bad")]

    async def scenario() -> None:
        journal = Journal(tmp_path)
        await _append(journal, written)
        await journal.close()
        again = Journal(tmp_path)
        assert [e for s in again.previous for e in read_segment(s)] == written
        await again.close()

    asyncio.run(scenario())


def test_concurrent_appends_share_writes_and_all_land(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = Journal(tmp_path)
        await asyncio.gather(*(_append(journal, [(TOPIC, str(i).encode(), b"v")]) for i in range(200)))
        await journal.close()
        reread = Journal(tmp_path)
        keys = sorted(k or b"" for s in reread.previous for _, k, _ in read_segment(s))
        assert keys == sorted(str(i).encode() for i in range(200))
        await reread.close()

    asyncio.run(scenario())


def test_a_segment_goes_only_when_sealed_settled_and_committed_past(tmp_path: Path) -> None:
    now = [0.0]

    async def scenario() -> None:
        journal = Journal(tmp_path, seal_after_s=5.0, clock=lambda: now[0])
        ticket = journal.append([(TOPIC, b"m", b"v")])
        await ticket.synced
        journal.acknowledged(ticket, {TOPIC: {0: 41, 3: 7}})
        [segment] = journal.segments
        journal.seal_due()
        assert not segment.sealed  # younger than seal_after_s
        now[0] = 6.0
        journal.seal_due()
        assert segment.sealed and not segment.settled()  # its publish has not finished
        assert journal.trim(TOPIC, {0: 100, 3: 100}) == []
        journal.release(ticket)
        assert journal.trim(TOPIC, {0: 42, 3: 7}) == []  # partition 3's record 7 is not loaded
        assert journal.trim(TOPIC, {0: 41, 3: 8}) == []  # nor partition 0's record 41
        assert journal.trim(TOPIC, {0: 42, 3: 8}) == [segment]
        assert not segment.path.exists()
        await journal.close()

    asyncio.run(scenario())


def test_segments_roll_over_at_their_size(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = Journal(tmp_path, segment_bytes=1000)
        for i in range(10):
            await _append(journal, [(TOPIC, b"k", bytes(300) + bytes([i]))])
        assert len(journal.segments) >= 4
        assert all(s.sealed for s in journal.segments[:-1])
        await journal.close()

    asyncio.run(scenario())


def test_replayed_segments_wait_for_the_replay_positions(tmp_path: Path) -> None:
    async def scenario() -> None:
        first = Journal(tmp_path)
        await _append(first, [(TOPIC, b"m", b"v")])
        await first.close()
        journal = Journal(tmp_path)
        [old] = journal.previous
        assert not journal.trimmable()  # not published again yet
        journal.replayed({TOPIC: {2: 5}})
        assert journal.trim(TOPIC, {2: 5}) == []
        assert journal.trim(TOPIC, {2: 6}) == [old]
        await journal.close()

    asyncio.run(scenario())


def test_one_process_holds_a_journal(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = Journal(tmp_path)
        with pytest.raises(JournalBusy):
            Journal(tmp_path)
        await journal.close()
        Journal(tmp_path)._lock.close()  # free again once closed

    asyncio.run(scenario())


def test_forget_segments_leaves_nothing_to_replay(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = Journal(tmp_path, segment_bytes=1)  # a segment per append
        for _ in range(3):
            await _append(journal, [(TOPIC, b"k", b"v")])
        await journal.close()
        forget_segments(tmp_path)
        again = Journal(tmp_path)
        assert again.previous == []
        await again.close()

    asyncio.run(scenario())
