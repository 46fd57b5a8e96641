"""One batch of record values into ClickHouse: its token, its recorded ranges, and the bisection that
finds the values ClickHouse refuses. Pure apart from the store it is handed.

A batch is, per partition, a contiguous range of offsets ``[start, end)``. Its insert deduplication
token derives from those ranges only, never from the values: the same ranges always carry the same
token, so ClickHouse drops a batch loaded again after a crash.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from adapters.clickhouse import BadInput
from schemas.event import upgrade_v1

# partition -> (first offset, last offset + 1)
Ranges = Mapping[int, tuple[int, int]]

# What ingest wrote before envelope v2 (orjson and pydantic both write the version first).
_V1_PREFIX = b'{"schema_version":1'
# A refusal's reason is kept to this many characters: ClickHouse's messages may quote the data.
_REASON_CHARS = 1000


class Loader(Protocol):
    def load(self, values: Sequence[bytes], token: str) -> None: ...


def dedup_token(topic: str, ranges: Ranges) -> str:
    """Insert deduplication token from Kafka positions only, never from contents: each partition as
    (partition, start, end), fixed-width, in partition order (an unambiguous encoding), hashed."""
    digest = hashlib.blake2b(digest_size=16)
    for partition in sorted(ranges):
        start, end = ranges[partition]
        digest.update(array("q", (partition, start, end)).tobytes())
    return f"{topic}|{digest.hexdigest()}"


def format_ranges(ranges: Ranges) -> str:
    """``"partition:start-end,..."`` in partition order."""
    return ",".join(f"{p}:{start}-{end}" for p, (start, end) in sorted(ranges.items()))


def parse_ranges(text: str) -> dict[int, tuple[int, int]] | None:
    """``format_ranges``'s ranges, or None for text it did not write."""
    ranges: dict[int, tuple[int, int]] = {}
    try:
        for item in text.split(","):
            partition, span = item.split(":")
            start, end = span.split("-")
            ranges[int(partition)] = (int(start), int(end))
    except ValueError:
        return None
    return ranges if all(0 <= s < e for s, e in ranges.values()) else None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A value ClickHouse (or the v1 upgrade) refused, by its index in the batch, with the reason."""

    index: int
    reason: str


def load_or_bisect(store: Loader, values: Sequence[bytes], token: str) -> list[Rejected]:
    """Load ``values`` under ``token``; if ClickHouse refuses the input, load every value it takes and
    return the others. Blocking (run it in a thread).

    Deterministic for the same values and verdicts, so a retry (after a crash or a failed insert) sends
    the same inserts with the same tokens: a refused insert stores nothing, and a half is loaded under
    the batch's token and its position in the bisection. Records of an older ingest (envelope v1) are
    upgraded only once an insert was refused: they cost nothing on the path of a good batch."""
    try:
        store.load(values, token)
        return []
    except BadInput:
        pass
    indexes, values, rejected = _upgraded(values)
    _bisect(store, values, indexes, token, rejected)
    return sorted(rejected, key=lambda r: r.index)


def _upgraded(values: Sequence[bytes]) -> tuple[list[int], list[bytes], list[Rejected]]:
    """The values with v1 envelopes upgraded to v2 (by index), and the v1 ones that do not validate."""
    indexes: list[int] = []
    out: list[bytes] = []
    rejected: list[Rejected] = []
    for i, value in enumerate(values):
        if value.startswith(_V1_PREFIX):
            try:
                value = upgrade_v1(value)
            except ValueError as exc:
                rejected.append(Rejected(i, _reason(f"invalid envelope v1: {exc}")))
                continue
        indexes.append(i)
        out.append(value)
    return indexes, out, rejected


def _bisect(
    store: Loader, values: list[bytes], indexes: list[int], token: str, rejected: list[Rejected]
) -> None:
    # Iterative, left half first (a fixed order: the inserts are the same in every retry).
    stack: list[tuple[int, int, str]] = [(0, len(values), token + "/")]
    while stack:
        lo, hi, path = stack.pop()
        if lo >= hi:
            continue
        try:
            store.load(values[lo:hi], path)
            continue
        except BadInput as exc:
            if hi - lo == 1:
                rejected.append(Rejected(indexes[lo], _reason(_explained(str(exc)))))
                continue
        mid = (lo + hi) // 2
        stack.append((mid, hi, path + "1"))
        stack.append((lo, mid, path + "0"))


def _explained(message: str) -> str:
    """ClickHouse's message, after what a person should know first: an envelope of another version."""
    if "envelope_v2" in message:  # the landing table's CHECK v = 2
        return f"unknown envelope version: {message}"
    return message


def _reason(text: str) -> str:
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS] + "…"
