"""The fast murmur2 partitioner agrees with aiokafka's own on every key. Pure."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.partitioner import murmur2, partition_for


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_murmur2_matches_aiokafka(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=0, max_size=80), st.integers(1, 64))
def test_partition_matches_the_default_partitioner(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_known_values() -> None:
    # Values of the Java client's Utils.murmur2 as aiokafka reproduces them; every tail length.
    for data in (b"", b"a", b"ab", b"abc", b"abcd", b"comms_email_79db01d65dcdfbec7bccd6425c496c07"):
        assert murmur2(data) == aiokafka_murmur2(data)
