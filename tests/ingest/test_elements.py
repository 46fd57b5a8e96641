"""Reading a batch: a lone surrogate escape costs only its element, and the reader that takes it reads
numbers as orjson does. Pure."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.elements import NotJson, load_batch, lone_surrogate

LONE = b'"\\ud800"'


@given(st.one_of(st.integers(-(2**200), 2**200), st.floats(allow_nan=False, allow_infinity=False)))
def test_numbers_read_the_same_with_or_without_a_lone_surrogate_beside_them(number: int | float) -> None:
    text = orjson.dumps(number) if isinstance(number, float) or -(2**63) <= number < 2**64 else str(number)
    element = text.encode() if isinstance(text, str) else text
    alone, lenient = load_batch(b"[" + element + b"]")
    assert not lenient
    beside, lenient = load_batch(b"[" + element + b"," + LONE + b"]")
    assert lenient and beside[0] == alone[0] and type(beside[0]) is type(alone[0])
    assert lone_surrogate(beside[1]) == "(event)" and lone_surrogate(beside[0]) is None


@pytest.mark.parametrize(
    "element",
    [b"1" + b"0" * 400, b"1e400", b"-1e400", b"NaN", b"Infinity", b"1" * 5_000, b"[" * 1_100 + b"]" * 1_100],
)
def test_what_orjson_refuses_stays_refused_beside_a_lone_surrogate(element: bytes) -> None:
    with pytest.raises(NotJson):
        load_batch(b"[" + element + b"]")
    with pytest.raises(NotJson, match="surrogate"):  # the first problem found is the one reported
        load_batch(b"[" + LONE + b"," + element + b"]")


def test_the_path_of_a_lone_surrogate_is_found_at_any_depth() -> None:
    deep: object = {"x": "\udc00"}
    for _ in range(2_000):
        deep = [deep]
    assert lone_surrogate({"a": 1, "b": [0, {"c\ud800": 1}]}) == "b.1.c\\ud800"
    assert lone_surrogate(deep) == ".".join(["0"] * 2_000) + ".x"
