"""``mailpulse report``: the API's summary, the worst domains, the figures per mailbox provider and the
bounces per classification as terminal tables (rich), or as JSON (``--json``: the summary's exact values,
the same keys as ``/api/summary``, plus those breakdowns).

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
from schemas.mailbox_providers import label

WORST_ORDER = "failure"
ALL_KEYS = 1000  # the breakdowns with few keys (providers, classifications) are shown whole


def _signals(summary: dict[str, Any], console: Console) -> None:
    counts, rates = summary["counts"], summary["rates"]
    table = Table(title="Deliverability signals")
    for column in ("rate", "value", "definition"):
        table.add_column(column, justify="right" if column == "value" else "left")
    table.add_row(
        "spam", oc.human_rate(rates["spam"], 3), f"{counts['spam_reported']:,} reported as spam / delivered"
    )
    table.add_row(
        "unsubscribe",
        oc.human_rate(rates["unsubscribe"]),
        f"{counts['unsubscribed']:,} unsubscribed / delivered",
    )
    table.add_row("block", oc.human_rate(rates["block"]), f"{counts['blocked']:,} blocked / with an outcome")
    table.add_row(
        "deferral", oc.human_rate(rates["deferral"]), f"{counts['deferred']:,} deferred / reached SENT"
    )
    console.print(table)


def _providers(providers: dict[str, Any], console: Console) -> None:
    table = Table(title="Mailbox providers (by recipient domain)")
    columns = ("mailbox provider", "with an outcome", "delivered", "bounced", "block", "spam", "deferral")
    for column in columns:
        table.add_column(column, justify="left" if column == "mailbox provider" else "right")
    for row in providers["rows"]:
        r = row["rates"]
        table.add_row(
            label(row["key"]),
            f"{row['messages']:,}",
            *(oc.human_rate(r[n]) for n in ("delivered", "bounced", "block")),
            oc.human_rate(r["spam"], 3),
            oc.human_rate(r["deferral"]),
        )
    console.print(table)


def _classifications(classes: dict[str, Any], console: Console) -> None:
    table = Table(title="Bounced messages by bounce classification")
    for column in ("classification", "bounced", "blocked", "share of bounced"):
        table.add_column(column, justify="left" if column == "classification" else "right")
    total = sum(row["counts"]["bounced"] for row in classes["rows"])
    for row in classes["rows"]:
        bounced = row["counts"]["bounced"]
        table.add_row(
            row["key"] or "(none given)", f"{bounced:,}", f"{row['counts']['blocked']:,}",
            oc.human_rate(oc.ratio(bounced, total)),
        )  # fmt: skip
    console.print(table)


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
    _signals(summary, console)

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


def _rows(breakdown: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "volumes"} for row in breakdown["rows"]]


def report_json(
    summary: dict[str, Any], worst: dict[str, Any], providers: dict[str, Any], classes: dict[str, Any]
) -> bytes:
    """The summary as ``/api/summary`` gives it, plus ``worst_recipient_domains``, ``mailbox_providers``
    and ``bounce_classifications`` (each: rows of key and figures)."""
    body = {
        **summary,
        "worst_recipient_domains": {"min_volume": worst["min_volume"], "rows": _rows(worst)},
        "mailbox_providers": {"rows": _rows(providers)},
        "bounce_classifications": {"rows": _rows(classes)},
    }
    return orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def _spec(params: q.Params, now: datetime, by: str, order: str, limit: int, min_volume: int) -> q.Breakdown:
    extra = {"by": [by], "order": [order], "limit": [str(limit)], "min_volume": [str(min_volume)]}
    return q.parse_breakdown({**params, **extra}, now)[1]


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
        spec = _spec(params, now, "recipient_domain", WORST_ORDER, top, min_volume)
        provider_spec = _spec(params, now, "mailbox_provider", "messages", ALL_KEYS, 1)
        class_spec = _spec(params, now, "bounce_classification", "bounced", ALL_KEYS, 1)
    except q.ParamErrors as exc:
        if as_json:
            stream.write(orjson.dumps({"errors": exc.problems}).decode() + "\n")
        else:
            for problem in exc.problems:
                console.print(f"[red]{problem}[/red]")
        return 2
    worst = {**service.breakdown(window, spec), "min_volume": min_volume}
    providers = service.breakdown(window, provider_spec)
    classes = service.breakdown(window, class_spec)
    # Bounced messages only: the '' key also holds every message that did not bounce.
    classes["rows"] = [row for row in classes["rows"] if row["counts"]["bounced"]]
    summary = service.summary(window)
    if as_json:
        stream.write(report_json(summary, worst, providers, classes).decode() + "\n")
    else:
        render(summary, worst, console)
        _providers(providers, console)
        _classifications(classes, console)
    return 0
