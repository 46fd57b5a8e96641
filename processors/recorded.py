"""The batch a processor is about to insert, recorded in ClickHouse (``processor_batches``) before the
insert, and read back by whoever takes the partitions over.

Kafka commit metadata would be the natural place, but the embedded broker (Tansu) does not keep it; a
row per partition in ClickHouse is kept wherever the tables are.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from adapters.clickhouse import ClickHouseStore
from processors.load import Ranges, format_ranges, parse_ranges

_COLUMNS = ["consumer_group", "topic", "partition", "start", "ranges", "recorded_at"]
_TYPES = ["String", "String", "UInt32", "UInt64", "String", "DateTime64(6, 'UTC')"]


def record(store: ClickHouseStore, group: str, topic: str, ranges: Ranges) -> None:
    """One row per partition of the batch, each with the whole batch's ranges (blocking)."""
    text = format_ranges(ranges)
    now = datetime.now(UTC)
    rows = [[group, topic, p, start, text, now] for p, (start, _) in sorted(ranges.items())]
    store.client.insert(
        f"{store.database}.processor_batches", rows, column_names=_COLUMNS, column_type_names=_TYPES
    )


def recorded(
    store: ClickHouseStore, group: str, topic: str, committed: dict[int, int], partitions: Collection[int]
) -> dict[int, Ranges]:
    """The recorded batch of each of ``partitions`` that starts at its committed offset (``committed``;
    0 when it has none): recorded, maybe loaded, not committed. A batch recorded before an older commit
    was settled since, and is left out (blocking)."""
    if not partitions:
        return {}
    rows = store.query(
        f"SELECT partition, argMax(start, recorded_at), argMax(ranges, recorded_at)"
        f" FROM {store.database}.processor_batches"
        " WHERE consumer_group = {g:String} AND topic = {t:String} AND partition IN {p:Array(UInt32)}"
        " GROUP BY partition",
        {"g": group, "t": topic, "p": sorted(partitions)},
    )
    out: dict[int, Ranges] = {}
    for partition, start, text in rows:
        ranges = parse_ranges(str(text))
        if ranges is not None and int(start) == committed.get(int(partition), 0):
            out[int(partition)] = ranges
    return out
