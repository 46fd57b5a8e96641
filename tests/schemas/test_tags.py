"""``is_tag`` (remembered) says what ``tag_problems`` says for one pair, asked once or many times."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas.event import tag_problems
from schemas.tags import is_tag

pairs = st.tuples(
    st.text(max_size=3) | st.sampled_from(["campaign", "a~b", "k" * 129, "x\n"]),
    st.text(max_size=3) | st.sampled_from(["spring-2026", "v" * 257, "", "é"]),
)


@given(st.lists(pairs, max_size=20))
def test_is_tag_is_tag_problems_for_one_pair(asked: list[tuple[str, str]]) -> None:
    for key, value in asked + asked:  # the second time from the memo
        assert is_tag(key, value) == (not tag_problems({key: value}))
