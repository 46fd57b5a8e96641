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


def test_resumes_after_an_exception_and_frees_the_cycles_made_meanwhile() -> None:
    gc.enable()

    class Node:
        other: object = None

    with pytest.raises(RuntimeError), collector_paused():
        node = Node()
        node.other = node  # a reference cycle: only the collector frees it
        alive = weakref.ref(node)
        del node
        assert alive() is not None  # reference counting cannot free it
        raise RuntimeError("load failed")
    assert gc.isenabled()
    assert alive() is None  # the young collection on leaving did
