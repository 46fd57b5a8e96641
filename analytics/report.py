"""``mailpulse report``: the API's summary and worst domains as terminal tables (rich)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from analytics import queries as q
from analytics.service import AnalyticsService


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def render(summary: dict[str, Any], worst: dict[str, Any], console: Console) -> None:
    filters = ", ".join(f"{k}={v}" for k, v in summary["filters"].items()) or "all mail"
    console.print(f"[bold]mailpulse report[/bold] {summary['from']} .. {summary['to']} ({filters})")

    volumes = Table(title="Messages per status (distinct)")
    volumes.add_column("status")
    volumes.add_column("messages", justify="right")
    for status, n in summary["volumes"].items():
        volumes.add_row(status, f"{n:,}")
    volumes.add_row("[bold]outcomes[/bold]", f"{summary['outcomes']:,}")
    console.print(volumes)

    rates = Table(title="Rates (over messages whose outcome is known)")
    for name in ("delivery_rate", "bounce_rate", "failure_rate", "open_rate"):
        rates.add_column(name.replace("_", " "), justify="right")
    rates.add_row(*(_rate(summary[n]) for n in ("delivery_rate", "bounce_rate", "failure_rate", "open_rate")))
    console.print(rates)

    latency = Table(title="Latency percentiles")
    for column in ("", "p50", "p95", "p99", "messages"):
        latency.add_column(column, justify="right" if column else "left")
    for name in ("time_to_deliver_ms", "time_to_open_ms"):
        p = summary[name]
        label = name.removesuffix("_ms").replace("_", " ")
        latency.add_row(label, *(_ms(p[k]) for k in ("p50", "p95", "p99")), f"{p['count']:,}")
    console.print(latency)
    console.print(f"[dim]estimator: {summary['time_to_deliver_ms']['estimator']}[/dim]")

    table = Table(
        title=f"Worst recipient domains by failure rate (at least {worst['min_volume']:,} outcomes)"
    )
    for column in ("recipient domain", "outcomes", "failure rate", "bounce rate", "delivery rate"):
        table.add_column(column, justify="left" if column == "recipient domain" else "right")
    for row in worst["rows"]:
        table.add_row(
            row["key"] or "(none)",
            f"{row['outcomes']:,}",
            _rate(row["failure_rate"]),
            _rate(row["bounce_rate"]),
            _rate(row["delivery_rate"]),
        )
    console.print(table)


def report(service: AnalyticsService, params: q.Params, now: datetime, top: int, min_volume: int) -> int:
    """Print the report; 2 (and every problem) when the parameters are invalid."""
    console = Console()
    try:
        window = q.parse_window(params, now)
        _, spec = q.parse_breakdown(
            {**params, "by": ["recipient_domain"], "limit": [str(top)], "min_volume": [str(min_volume)]}, now
        )
    except q.ParamErrors as exc:
        for problem in exc.problems:
            console.print(f"[red]{problem}[/red]")
        return 2
    worst = service.breakdown(window, spec)
    render(service.summary(window), {**worst, "min_volume": min_volume}, console)
    return 0
