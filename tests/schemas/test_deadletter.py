"""Dead letters fit one Kafka record whatever they carry, and are cut only when they must be."""

from __future__ import annotations

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
