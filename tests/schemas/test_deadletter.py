"""Dead letters fit one Kafka record whatever they carry, and are cut only when they must be."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.deadletter import dead_letter

ABOUT = {"stage": "processor", "reason": "not a v1 envelope", "offset": 7}
CONTENT = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=3_000),  # control characters escape to six bytes
    st.dictionaries(st.text(max_size=20), st.text(max_size=200), max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(CONTENT, st.integers(200, 6_000))
def test_a_dead_letter_fits_and_keeps_the_start_of_what_it_cuts(content: Any, most_bytes: int) -> None:
    size = len(orjson.dumps(content))
    letter = dead_letter(ABOUT, "value", content, most_bytes, size)
    assert len(letter) <= most_bytes
    back = orjson.loads(letter)
    assert {k: back[k] for k in ABOUT} == ABOUT
    whole = orjson.dumps({**ABOUT, "value": content})
    if len(whole) <= most_bytes:
        assert letter == whole  # nothing is cut that fits
    else:
        text = content if isinstance(content, str) else orjson.dumps(content).decode()
        assert (back["value_cut"], back["value_bytes"]) == (True, size)
        assert text.startswith(back["value"])


def nested(depth: int, leaf: Any) -> Any:
    for level in range(depth):
        leaf = [leaf] if level % 2 else {"k": leaf}
    return leaf


# What orjson reads (or the standard library, for lone surrogates) but cannot write back.
UNWRITABLE = st.one_of(
    st.integers(256, 1_024).map(lambda depth: nested(depth, "x")),
    st.text(max_size=20).map(lambda t: {"reason": t + "\ud800" + t, "n": 1}),
    st.text(max_size=20).map(lambda t: {t + "\udfff": [t]}),
    st.integers(2**64, 2**200).map(lambda n: {"attempt": n}),
    st.lists(st.just(nested(300, 0)), min_size=1, max_size=200),
)


@settings(max_examples=200, deadline=None)
@given(UNWRITABLE, st.integers(300, 20_000), st.sampled_from(["field", "k\udc00"]))
def test_a_dead_letter_keeps_what_orjson_cannot_write_as_text(
    content: Any, most_bytes: int, field: str
) -> None:
    about = {**ABOUT, "problems": [{"field": field, "message": "must be a JSON object"}]}
    letter = dead_letter(about, "value", content, most_bytes)
    assert len(letter) <= most_bytes
    back = orjson.loads(letter)  # a strict reader takes it
    assert back["stage"] == "processor" and back["problems"][0]["field"] in ("field", "k\\udc00")
    assert "cannot be re-encoded" in back["value_as_text"]
    assert isinstance(back["value"], str)
    if not back.get("value_cut"):
        # Whole, the text reads back as what was rejected (Python's reader takes lone surrogates).
        assert json.loads(back["value"]) == content
