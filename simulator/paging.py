"""List queries and keyset pagination with opaque page tokens. Pure.

Lists are ordered by ``(createdAt, id)``, oldest first, unless the simulator is told to list in
another ``ListOrder`` (newest first, or shuffled by a hash of the id: clients must not rely on the
order). A ``pageToken`` names the last item of the previous page and the filters it was made for, so
pages never overlap or skip items that existed when the list began, and a token used with other filters
is refused. Oldest first, items created meanwhile sort after every existing one and appear on later
pages; in the other orders they may land before the token and are only listed by a later request.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import orjson

from simulator.validation import Problem, parse_rfc3339

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
Key = tuple[datetime, str]  # (createdAt, id)


class PageTokenError(ValueError):
    pass


class ListOrder(StrEnum):
    ASCENDING = "ascending"  # (createdAt, id), oldest first: the default
    DESCENDING = "descending"  # newest first
    SHUFFLED = "shuffled"  # by a hash of the id: unrelated to createdAt, stable across pages


@dataclass(frozen=True, slots=True)
class ListQuery:
    page_size: int = DEFAULT_PAGE_SIZE
    token: str | None = None
    start: datetime | None = None  # createdAt >= start
    end: datetime | None = None  # createdAt < end
    operation_id: str | None = None
    status: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Identity of the filters (not of the page): a token is valid only for the same filters."""
        parts = [self.start, self.end, self.operation_id, self.status, sorted(self.tags.items())]
        return hashlib.blake2b(orjson.dumps(parts, default=str), digest_size=6).hexdigest()


def encode_token(last: Key, fingerprint: str) -> str:
    created_ms = int(last[0].timestamp() * 1000)
    raw = orjson.dumps([created_ms, last[1], fingerprint])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, fingerprint: str) -> Key:
    try:
        created_ms, last_id, made_for = orjson.loads(
            base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        )
        key = (datetime.fromtimestamp(created_ms / 1000, UTC), str(last_id))
    except (binascii.Error, ValueError, TypeError, OverflowError):
        raise PageTokenError("pageToken is not a token this API issued") from None
    if made_for != fingerprint:
        raise PageTokenError("pageToken belongs to a list with other filters")
    return key


def parse_list_query(params: Mapping[str, str], statuses: frozenset[str]) -> tuple[ListQuery, list[Problem]]:
    """The query of a list request and every problem with it (``statuses``: what ``status`` may be)."""
    problems: list[Problem] = []
    size_text = params.get("pageSize")
    page_size = DEFAULT_PAGE_SIZE
    if size_text is not None:
        if not size_text.strip().isdigit() or not 1 <= int(size_text) <= MAX_PAGE_SIZE:
            problems.append(
                Problem("pageSize", "page_size_out_of_range", f"pageSize must be 1..{MAX_PAGE_SIZE}")
            )
        else:
            page_size = int(size_text)
    dates: dict[str, datetime | None] = {}
    for name in ("startDate", "endDate"):
        text = params.get(name)
        dates[name] = parse_rfc3339(text) if text is not None else None
        if text is not None and dates[name] is None:
            problems.append(Problem(name, "invalid_datetime", f"{name} must be RFC 3339 with a time zone"))
    status = params.get("status")
    if status is not None and status not in statuses:
        problems.append(Problem("status", "invalid_status", f"status must be one of {sorted(statuses)}"))
    tags = _tags(params.get("tags"), problems)
    query = ListQuery(
        page_size=page_size,
        token=params.get("pageToken") or None,
        start=dates["startDate"],
        end=dates["endDate"],
        operation_id=params.get("operationId") or None,
        status=status,
        tags=tags,
    )
    return query, problems


def _tags(text: str | None, problems: list[Problem]) -> dict[str, str]:
    """``k:v;k2:v2;`` -> {k: v, k2: v2}."""
    if not text:
        return {}
    tags = {}
    for pair in filter(None, text.split(";")):
        key, sep, value = pair.partition(":")
        if not sep or not key or not value:
            problems.append(Problem("tags", "invalid_tags", "tags must look like key:value;key2:value2;"))
            return {}
        tags[key] = value
    return tags


def select(
    keys: Sequence[Key],
    query: ListQuery,
    matches: Callable[[str], bool],
    now: datetime,
    retention: timedelta,
    order: ListOrder = ListOrder.ASCENDING,
) -> tuple[list[str], str | None]:
    """Ids of one page and the token of the next (None on the last page). Only items created in the
    retention window up to ``now`` exist. ``keys`` are sorted oldest first whatever ``order`` lists.
    Raises PageTokenError for a bad token."""
    fingerprint = query.fingerprint()
    oldest = now - retention
    start = max(query.start, oldest) if query.start else oldest
    position = bisect.bisect_left(keys, (start, ""))
    if order is not ListOrder.ASCENDING:
        return _select_reordered(keys[position:], query, matches, now, order, fingerprint)
    if query.token:
        position = max(position, bisect.bisect_right(keys, decode_token(query.token, fingerprint)))
    found: list[str] = []
    last: Key | None = None
    for index in range(position, len(keys)):
        key = keys[index]
        created, item = key
        if created > now or (query.end is not None and created >= query.end):
            break
        if not matches(item):
            continue
        if len(found) == query.page_size:
            assert last is not None
            return found, encode_token(last, fingerprint)
        found.append(item)
        last = key
    return found, None


def _shuffle_key(item: str) -> bytes:
    return hashlib.blake2b(item.encode(), digest_size=8).digest() + item.encode()


def _select_reordered(
    keys: Sequence[Key],
    query: ListQuery,
    matches: Callable[[str], bool],
    now: datetime,
    order: ListOrder,
    fingerprint: str,
) -> tuple[list[str], str | None]:
    """``select`` for the orders other than oldest first: the window is sorted whole (a simulator's
    lists are small enough), and the token's key is compared in that order."""
    window = [
        (_ms(created), item)
        for created, item in keys
        if created <= now and (query.end is None or created < query.end) and matches(item)
    ]
    after: tuple[int, str] | None = None
    if query.token:
        created, last_id = decode_token(query.token, fingerprint)
        after = (round(created.timestamp() * 1000), last_id)  # the token holds whole milliseconds
    if order is ListOrder.DESCENDING:
        window.sort(reverse=True)
        rest = [k for k in window if after is None or k < after]
    else:
        window.sort(key=lambda k: _shuffle_key(k[1]))
        rest = [k for k in window if after is None or _shuffle_key(k[1]) > _shuffle_key(after[1])]
    page = rest[: query.page_size]
    if len(rest) <= query.page_size:
        return [item for _, item in page], None
    last_ms, last_id = page[-1]
    token = encode_token((datetime.fromtimestamp(last_ms / 1000, UTC), last_id), fingerprint)
    return [item for _, item in page], token


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)
