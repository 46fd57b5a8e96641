"""Reading a batch: a lone surrogate escape costs only its element, and the reader that takes it reads
numbers as orjson does. Rejected elements: a dead letter each when few, one for the post when many."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.publisher import Rejected
from ingest.elements import (
    MAX_ERRORS,
    PER_ELEMENT_LETTERS,
    Flood,
    NotJson,
    Rejections,
    load_batch,
    lone_surrogate,
)
from schemas.privacy import RecipientPrivacy

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


def test_a_flood_makes_one_dead_letter_within_the_record_whatever_its_elements_hold() -> None:
    rejections = Rejections("sendgrid", RecipientPrivacy())
    big = {"email": "x" * 300_000}
    deep: object = "\ud800"
    for _ in range(600):
        deep = [deep]
    for index in range(5_000):
        element = deep if index == 3 else big
        rejections.add(index, element, [{"field": "timestamp", "message": f"bad {index % 30}"}])
    assert len(rejections.first) == PER_ELEMENT_LETTERS and len(rejections.errors) == MAX_ERRORS
    assert rejections.answer()["errors_total"] == 5_000
    [letter] = rejections.dead_letters(5_001, 1)
    assert isinstance(letter, Flood)
    value = letter.to_json(1024 * 1024)
    assert len(value) <= 1024 * 1024
    back = orjson.loads(value)
    assert (back["elements"], back["accepted"], back["rejected"], back["problems_total"]) == (
        5_001,
        1,
        5_000,
        5_000,
    )
    assert len(back["problem_counts"]) == 20 and back["problem_counts"][0]["count"] == 167
    first = back["first"]
    assert [f["index"] for f in first] == list(range(10))
    assert first[0]["payload_cut"] and first[0]["payload"].startswith('{"email":"xxx')
    assert "cannot be re-encoded" in first[3]["payload_as_text"]


def test_few_rejected_elements_keep_a_dead_letter_each() -> None:
    rejections = Rejections("twilio", RecipientPrivacy())
    for index in range(PER_ELEMENT_LETTERS):
        rejections.add(index, {"n": index}, [{"field": "id", "message": "Field required"}])
    letters = rejections.dead_letters(PER_ELEMENT_LETTERS, 0)
    assert [type(d) for d in letters] == [Rejected] * PER_ELEMENT_LETTERS
    assert [orjson.loads(d.to_json(10_000))["payload"] for d in letters] == [{"n": i} for i in range(10)]
    assert "errors_total" not in rejections.answer()
