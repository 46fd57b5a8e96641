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

# One statement with bound parameters, not the driver's insert: that one reads the table's description
# first, a cost the first batch of every processor would pay.
_RECORD = """INSERT INTO {db}.processor_batches (consumer_group, topic, partition, start, ranges, recorded_at)
SELECT {{group:String}}, {{topic:String}}, ps.1, ps.2, {{ranges:String}}, {{at:DateTime64(6, 'UTC')}}
FROM (SELECT arrayJoin(arrayZip({{partitions:Array(UInt32)}}, {{starts:Array(UInt64)}})) AS ps)"""


def record(store: ClickHouseStore, group: str, topic: str, ranges: Ranges) -> None:
    """One row per partition of the batch, each with the whole batch's ranges (blocking)."""
    ordered = sorted(ranges.items())
    store.client.command(
        _RECORD.format(db=store.database),
        parameters={
            "group": group,
            "topic": topic,
            "ranges": format_ranges(ranges),
            "at": datetime.now(UTC),
            "partitions": [p for p, _ in ordered],
            "starts": [start for _, (start, _) in ordered],
        },
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
