"""Keyset pagination with opaque tokens (pure): every item once, in order, for any page size."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.paging import (
    DEFAULT_PAGE_SIZE,
    Key,
    ListOrder,
    ListQuery,
    PageTokenError,
    decode_token,
    encode_token,
    parse_list_query,
    select,
)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
STATUSES = frozenset({"QUEUED", "SENT"})


def keys_from(offsets_ms: list[int]) -> list[Key]:
    # Several items may share a createdAt (one send request creates them together).
    return sorted(
        (T0 + timedelta(milliseconds=ms), f"comms_email_{i:05d}") for i, ms in enumerate(offsets_ms)
    )


def walk(
    keys: list[Key],
    query: ListQuery,
    matches: set[str] | None = None,
    order: ListOrder = ListOrder.ASCENDING,
) -> tuple[list[str], int]:
    items: list[str] = []
    token, pages = None, 0
    while True:
        page, token = select(
            keys,
            replace(query, token=token),
            lambda i: matches is None or i in matches,
            T0 + timedelta(days=1),
            WEEK,
            order,
        )
        items += page
        pages += 1
        assert len(page) <= query.page_size
        if token is None:
            return items, pages


@settings(max_examples=200, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 5_000), max_size=300),
    page_size=st.integers(1, 40),
    every=st.integers(1, 4),
)
def test_pages_hold_every_matching_item_once_in_order(offsets: list[int], page_size: int, every: int) -> None:
    keys = keys_from(offsets)
    wanted = {item for n, (_, item) in enumerate(keys) if n % every == 0}
    items, pages = walk(keys, ListQuery(page_size=page_size), wanted)
    assert items == [item for _, item in keys if item in wanted]
    assert pages == max(1, -(-len(wanted) // page_size))


@settings(max_examples=100, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 5_000), max_size=200),
    page_size=st.integers(1, 30),
    order=st.sampled_from([ListOrder.DESCENDING, ListOrder.SHUFFLED]),
)
def test_other_orders_list_every_item_once(offsets: list[int], page_size: int, order: ListOrder) -> None:
    keys = keys_from(offsets)
    items, pages = walk(keys, ListQuery(page_size=page_size), order=order)
    assert sorted(items) == sorted(item for _, item in keys) and len(set(items)) == len(items)
    assert pages == max(1, -(-len(keys) // page_size))
    if order is ListOrder.DESCENDING:
        assert items == [item for _, item in reversed(keys)]


def test_a_shuffled_list_is_not_in_creation_order() -> None:
    keys = keys_from(list(range(0, 50_000, 1000)))
    items, _ = walk(keys, ListQuery(page_size=7), order=ListOrder.SHUFFLED)
    assert items != [item for _, item in keys] and items != [item for _, item in reversed(keys)]


def test_start_end_and_now_bound_the_list() -> None:
    keys = keys_from([0, 1000, 2000, 3000])
    query = ListQuery(start=T0 + timedelta(seconds=1), end=T0 + timedelta(seconds=3))
    assert select(keys, query, lambda i: True, T0 + timedelta(days=1), WEEK)[0] == [keys[1][1], keys[2][1]]
    assert select(keys, ListQuery(), lambda i: True, T0 + timedelta(seconds=1.5), WEEK)[0] == [
        k[1] for k in keys[:2]
    ]
    later = T0 + WEEK + timedelta(seconds=1.5)  # the first two are past the retention
    assert select(keys, ListQuery(), lambda i: True, later, WEEK)[0] == [k[1] for k in keys[2:]]


def test_items_created_after_a_page_appear_on_later_pages() -> None:
    keys = keys_from([0, 0, 1, 2])
    first, token = select(keys, ListQuery(page_size=2), lambda i: True, T0 + timedelta(days=1), WEEK)
    keys.append((T0 + timedelta(seconds=5), "comms_email_new"))
    rest, _ = select(keys, ListQuery(page_size=10, token=token), lambda i: True, T0 + timedelta(days=1), WEEK)
    assert first + rest == [k[1] for k in keys]


def test_tokens_are_opaque_and_bound_to_their_filters() -> None:
    token = encode_token((T0, "comms_email_1"), ListQuery(status="SENT").fingerprint())
    assert decode_token(token, ListQuery(status="SENT").fingerprint()) == (T0, "comms_email_1")
    with pytest.raises(PageTokenError, match="other filters"):
        decode_token(token, ListQuery(status="QUEUED").fingerprint())
    for bad in ("", "not-a-token", "W10", token[:-3]):
        with pytest.raises(PageTokenError):
            decode_token(bad, ListQuery(status="SENT").fingerprint())


@pytest.mark.parametrize(
    ("params", "problems"),
    [
        ({}, []),
        ({"pageSize": "1"}, []),
        ({"pageSize": "1000"}, []),
        ({"pageSize": "0"}, ["pageSize"]),
        ({"pageSize": "1001"}, ["pageSize"]),
        ({"pageSize": "-5"}, ["pageSize"]),
        ({"pageSize": "ten"}, ["pageSize"]),
        ({"startDate": "2026-11-23"}, ["startDate"]),
        (
            {"pageSize": "0", "endDate": "x", "status": "LOST", "tags": "novalue"},
            ["pageSize", "endDate", "status", "tags"],
        ),
    ],
)
def test_list_parameters(params: dict[str, str], problems: list[str]) -> None:
    query, found = parse_list_query(params, STATUSES)
    assert [p.field for p in found] == problems
    if not params:
        assert query.page_size == DEFAULT_PAGE_SIZE


def test_tags_filter_parses_pairs() -> None:
    query, problems = parse_list_query({"tags": "campaign:spring;tenant:acme;"}, STATUSES)
    assert problems == [] and query.tags == {"campaign": "spring", "tenant": "acme"}
