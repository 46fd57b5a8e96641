"""The bench's result table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    measurement: str
    figure: float
    unit: str
    ratio: str = ""  # against its ceiling or baseline, from the same run
    target: str = ""
    met: bool | None = None  # None: informational, no target


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def render(rows: Sequence[Row]) -> str:
    header = ("measurement", "figure", "unit", "ratio", "target", "met?")
    cells = [header] + [
        (
            r.measurement,
            f"{r.figure:,.0f}" if r.figure >= 100 else f"{r.figure:,.1f}",
            r.unit,
            r.ratio,
            r.target,
            "" if r.met is None else ("yes" if r.met else "NO"),
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = []
    for n, c in enumerate(cells):
        lines.append(
            "  ".join(
                v.rjust(w) if i == 1 else v.ljust(w) for i, (v, w) in enumerate(zip(c, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
