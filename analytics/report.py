"""``mailpulse report``: the API's summary and worst domains as terminal tables (rich), or as JSON
(``--json``: the summary's exact values, the same keys as ``/api/summary``, plus the worst domains).

Every figure is defined in ``schemas.outcomes``; durations read in human units (ms, s, min, h, d)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any, TextIO

import orjson
from rich.console import Console
from rich.table import Table

from analytics import queries as q
from analytics.service import AnalyticsService
from schemas import outcomes as oc

WORST_ORDER = "failure"


def render(summary: dict[str, Any], worst: dict[str, Any], console: Console) -> None:
    filters = ", ".join(f"{k}={v}" for k, v in summary["filters"].items()) or "all mail"
    console.print(f"[bold]mailpulse report[/bold] {summary['from']} .. {summary['to']} ({filters})")

    counts, rates = summary["counts"], summary["rates"]
    outcomes = Table(title="Outcomes by final status (classes add up to 100%)")
    for column in ("outcome", "messages", "rate"):
        outcomes.add_column(column, justify="left" if column == "outcome" else "right")
    for name in oc.CLASSES:
        outcomes.add_row(name, f"{counts[name]:,}", oc.human_rate(rates[name]))
    outcomes.add_row(
        "[bold]with an outcome[/bold]", f"{summary['messages']:,}", "100.00%" if summary["messages"] else "-"
    )
    outcomes.add_row("[dim]pending (no outcome yet)[/dim]", f"{summary['pending']:,}", "")
    console.print(outcomes)

    more = Table(title="Derived rates")
    for column in ("rate", "value", "definition"):
        more.add_column(column, justify="right" if column == "value" else "left")
    more.add_row("failure", oc.human_rate(rates["failure"]), "(bounced + failed) / with an outcome")
    more.add_row("opened", oc.human_rate(rates["opened"]), f"{counts['opened']:,} opened / delivered")
    more.add_row("clicked", oc.human_rate(rates["clicked"]), f"{counts['clicked']:,} clicked / delivered")
    console.print(more)

    funnel = Table(title="Funnel (reached at least each stage)")
    funnel.add_column("stage")
    funnel.add_column("messages", justify="right")
    for stage, n in summary["funnel"]:
        funnel.add_row(stage, f"{n:,}")
    console.print(funnel)

    latency = Table(title="Latency percentiles")
    for column in ("", "p50", "p95", "p99", "messages"):
        latency.add_column(column, justify="right" if column else "left")
    for name in ("time_to_deliver_ms", "time_to_open_ms"):
        p = summary[name]
        label = name.removesuffix("_ms").replace("_", " ")
        latency.add_row(label, *(oc.human_duration(p[k]) for k in ("p50", "p95", "p99")), f"{p['count']:,}")
    console.print(latency)
    console.print(f"[dim]estimator: {summary['time_to_deliver_ms']['estimator']}[/dim]")

    table = Table(
        title=f"Worst recipient domains by failure rate (at least {worst['min_volume']:,} with an outcome)"
    )
    columns = ("recipient domain", "with an outcome", "failure", "bounced", "failed", "delivered")
    for column in columns:
        table.add_column(column, justify="left" if column == "recipient domain" else "right")
    for row in worst["rows"]:
        r = row["rates"]
        table.add_row(
            row["key"] or "(none)",
            f"{row['messages']:,}",
            *(oc.human_rate(r[n]) for n in ("failure", "bounced", "failed", "delivered")),
        )
    console.print(table)


def report_json(summary: dict[str, Any], worst: dict[str, Any]) -> bytes:
    """The summary as ``/api/summary`` gives it, plus ``worst_recipient_domains`` (key and figures)."""
    rows = [{k: v for k, v in row.items() if k != "volumes"} for row in worst["rows"]]
    body = {**summary, "worst_recipient_domains": {"min_volume": worst["min_volume"], "rows": rows}}
    return orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def report(
    service: AnalyticsService,
    params: q.Params,
    now: datetime,
    top: int,
    min_volume: int,
    as_json: bool = False,
    out: TextIO | None = None,
) -> int:
    """Print the report; 2 (and every problem) when the parameters are invalid."""
    stream = out or sys.stdout
    console = Console(file=stream)
    try:
        window = q.parse_window(params, now)
        _, spec = q.parse_breakdown(
            {
                **params,
                "by": ["recipient_domain"],
                "order": [WORST_ORDER],
                "limit": [str(top)],
                "min_volume": [str(min_volume)],
            },
            now,
        )
    except q.ParamErrors as exc:
        if as_json:
            stream.write(orjson.dumps({"errors": exc.problems}).decode() + "\n")
        else:
            for problem in exc.problems:
                console.print(f"[red]{problem}[/red]")
        return 2
    worst = {**service.breakdown(window, spec), "min_volume": min_volume}
    summary = service.summary(window)
    if as_json:
        stream.write(report_json(summary, worst).decode() + "\n")
    else:
        render(summary, worst, console)
    return 0
