import gc
import weakref
from collections.abc import Iterator

import pytest

from processors.collector import collector_paused


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    (gc.enable if enabled else gc.disable)()


def test_paused_inside_and_back_after() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_holders_resume_only_when_the_last_leaves() -> None:
    gc.enable()
    first, second = collector_paused(), collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # not nested: the first batch ends while the second runs
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


class Node:
    """A GC-tracked object made fresh each time (lists and dicts may come from free lists, which
    skip the collector's allocation count)."""

    other: object = None


@pytest.fixture
def small_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(100, 2, 2)
    yield
    gc.set_threshold(*saved)


@pytest.mark.usefixtures("small_thresholds")
def test_resumes_after_an_exception_and_frees_the_cycles_made_meanwhile() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        survivors = [Node() for _ in range(200)]  # what a batch leaves behind (new cached states)
        node = Node()
        node.other = node  # a reference cycle: only the collector frees it
        alive = weakref.ref(node)
        del node
        assert alive() is not None  # reference counting cannot free it
        raise RuntimeError("load failed")
    assert gc.isenabled()
    Node()  # the next allocation: the survivors put the count over the threshold, the collector runs
    assert alive() is None
    del survivors


@pytest.mark.usefixtures("small_thresholds")
def test_the_older_generations_still_come_round() -> None:
    """After each batch the collector follows its own policy, so the older generations are collected
    in their turn (a forced young-only collection after each batch would reset the count every time,
    and cycles that outlived one young collection would stay)."""
    gc.enable()
    collected: list[int] = []
    kept: list[Node] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collected.append(info["generation"])

    gc.callbacks.append(record)
    try:
        for _ in range(6):
            with collector_paused():
                kept += [Node() for _ in range(200)]
            Node()
    finally:
        gc.callbacks.remove(record)
    assert max(collected, default=0) >= 1
