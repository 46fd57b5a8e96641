"""Times given by people (command-line ``--since``, API ``from``/``to``): one parser, one rule. Pure.

An ISO-8601 time without an offset is UTC, never the machine's local zone: every stored time is UTC, and
the same text must mean the same instant on every host. Accepted instants lie in [``EARLIEST``,
``LATEST``): Kafka timestamps start at the epoch and ClickHouse ``DateTime`` columns end in 2106, so
anything outside cannot be asked about and is refused with a message saying so, not overflowed.
"""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2106, 1, 1, tzinfo=UTC)  # exclusive; ClickHouse DateTime ends at 2106-02-07
EXAMPLE = "2026-11-23T14:00:00Z"


def iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_utc(text: str, earliest: datetime = EARLIEST, latest: datetime = LATEST) -> datetime:
    """``text`` (ISO 8601; without an offset: UTC) as an aware UTC datetime in [earliest, latest).

    Raises ValueError with a message fit for the person who typed it."""
    raw = text.strip()
    shown = repr(raw[:40])
    out_of_range = f"{shown} is out of range: times must lie in [{iso_z(earliest)}, {iso_z(latest)})"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        if "out of range" in str(exc):  # Python's "year 0 is out of range"
            raise ValueError(out_of_range) from None
        raise ValueError(f"{shown} is not an ISO-8601 time (e.g. {EXAMPLE})") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        raise ValueError(out_of_range) from None
    if not earliest <= utc < latest:
        raise ValueError(out_of_range)
    return utc
