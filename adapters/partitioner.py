"""Kafka's default key partitioning (the Java client's murmur2), cheaper than aiokafka's pure-Python
``murmur2`` on ingest's and the processor's hot paths (docs/performance.md#hot-path-choices). Same results
bit for bit (tests/adapters/test_partitioner.py), so a key lands where ``producer.send`` puts it.
Pure."""

from __future__ import annotations

from collections.abc import Sequence
from struct import Struct

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_SEED = 0x9747B28C
_WORDS: dict[int, Struct] = {}  # little-endian 32-bit words, one Struct per word count
# A message's events follow each other within seconds (ingest) and within a batch (transitions): a
# bounded memo of recent keys makes most lookups a dict hit. Emptied when full (~6 MB at most).
_MEMO_MAX = 32_768
_memo: dict[bytes, int] = {}


def murmur2(data: bytes) -> int:
    length = len(data)
    h = _SEED ^ length
    count = length // 4
    words = _WORDS.get(count)
    if words is None:
        words = _WORDS[count] = Struct(f"<{count}I")
    for k in words.unpack_from(data):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & ~3
    extra = length - tail
    if extra:
        if extra >= 3:
            h ^= data[tail + 2] << 16
        if extra >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """The partition aiokafka's DefaultPartitioner picks for ``key`` among ``partitions`` (sorted)."""
    h = _memo.get(key)
    if h is None:
        if len(_memo) >= _MEMO_MAX:
            _memo.clear()
        h = _memo[key] = murmur2(key) & 0x7FFFFFFF
    return partitions[h % len(partitions)]
