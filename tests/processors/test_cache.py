"""StateCache: bounded LRU of message states per partition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.cache import StateCache
from processors.state import MessageState


def _state(message_id: str) -> MessageState:
    return MessageState(message_id)


def test_get_put_and_len() -> None:
    cache = StateCache(max_messages=10)
    assert len(cache) == 0
    assert cache.get(0, "m1") is None
    a = _state("m1")
    cache.put(0, a)
    assert cache.get(0, "m1") is a
    assert cache.get(1, "m1") is None  # partitions are separate
    cache.put(1, _state("m2"))
    assert len(cache) == 2


def test_put_again_replaces_without_growing() -> None:
    cache = StateCache(max_messages=10)
    cache.put(0, _state("m1"))
    newer = _state("m1")
    cache.put(0, newer)
    assert len(cache) == 1
    assert cache.get(0, "m1") is newer


def test_eviction_keeps_the_bound_and_drops_least_recently_used() -> None:
    cache = StateCache(max_messages=3)
    for m in ("a", "b", "c"):
        cache.put(0, _state(m))
    assert cache.get(0, "a") is not None  # a is now the most recently used
    cache.put(0, _state("d"))
    assert len(cache) == 3
    assert cache.get(0, "b") is None  # the least recently used went
    assert {m for m in "acd" if cache.get(0, m) is not None} == {"a", "c", "d"}


def test_put_refreshes_recency() -> None:
    cache = StateCache(max_messages=2)
    cache.put(0, _state("a"))
    cache.put(0, _state("b"))
    cache.put(0, _state("a"))
    cache.put(0, _state("c"))
    assert cache.get(0, "b") is None
    assert cache.get(0, "a") is not None and cache.get(0, "c") is not None


def test_eviction_takes_from_the_largest_partition() -> None:
    cache = StateCache(max_messages=4)
    for m in ("a", "b", "c"):
        cache.put(0, _state(m))
    cache.put(1, _state("x"))
    cache.put(1, _state("y"))  # 5 > 4: partition 0 holds most, its LRU entry goes
    assert len(cache) == 4
    assert cache.get(0, "a") is None
    assert cache.get(1, "x") is not None and cache.get(1, "y") is not None


def test_drop_partitions() -> None:
    cache = StateCache(max_messages=10)
    for p in (0, 1, 2):
        for m in ("a", "b"):
            cache.put(p, _state(f"{p}{m}"))
    assert len(cache) == 6
    cache.drop_partitions({0, 2, 7})  # 7 was never cached: no effect
    assert len(cache) == 2
    assert cache.get(0, "0a") is None and cache.get(2, "2b") is None
    assert cache.get(1, "1a") is not None and cache.get(1, "1b") is not None
    cache.drop_partitions(set())
    assert len(cache) == 2
    cache.put(0, _state("0a"))  # a dropped partition can be filled again
    assert len(cache) == 3 and cache.get(0, "0a") is not None


ops = st.lists(
    st.tuples(st.sampled_from(["put", "get", "drop"]), st.integers(0, 3), st.integers(0, 12)),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), ops)
def test_size_is_bounded_and_counts_what_is_retrievable(
    max_messages: int, operations: list[tuple[str, int, int]]
) -> None:
    cache = StateCache(max_messages)
    ever: set[tuple[int, str]] = set()
    for op, partition, n in operations:
        message_id = f"m{n}"
        if op == "put":
            state = _state(message_id)
            cache.put(partition, state)
            ever.add((partition, message_id))
        elif op == "get":
            got = cache.get(partition, message_id)
            assert got is None or got.message_id == message_id
        else:
            cache.drop_partitions({partition})
            ever = {(p, m) for p, m in ever if p != partition}
        assert 0 <= len(cache) <= max_messages
    present = {(p, m) for p, m in ever if cache.get(p, m) is not None}
    assert len(cache) == len(present)


def test_entry_just_put_survives_eviction() -> None:
    cache = StateCache(max_messages=1)
    cache.put(0, _state("a"))
    cache.put(1, _state("b"))  # evicts a; partition 0 stays known, empty
    cache.put(0, _state("c"))  # should evict b (older), evicts c instead
    assert cache.get(0, "c") is not None
