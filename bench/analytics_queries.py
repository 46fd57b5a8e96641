"""Query bench: ``python -m bench.analytics_queries --events 10000000``.

Generates N events for one day directly in chDB (``INSERT ... SELECT FROM numbers(N)``) into the landing
table the processor loads, ``email_events_in``, so the real materialized views fill events, the message
state and the rollups, then times every API query over the whole day and over one hour, and a count of
messages by status: median of 3 runs, wall clock, through ``AnalyticsService``.

The mix: N/3 messages, three events each (QUEUED; an outcome: ~91% DELIVERED, ~5% UNDELIVERED, ~2% FAILED,
~2% still in flight (DEFERRED); then OPENED for ~45% of delivered, else SENT (Twilio), CLICK or DEFERRED),
5 sender domains, ~2,000 recipient domains with a long tail, campaign tags on ~60% of messages.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.clickhouse import ClickHouseStore, connect
from analytics import queries as q
from analytics.service import AnalyticsService
from storage.migrations import DERIVED_TABLES

DAY = datetime(2026, 11, 1, tzinfo=UTC)
CHUNK = 1_000_000  # rows per INSERT: large inserts, bounded memory

# One row per event: message m = number intDiv 3, slot = number % 3. h1..h3 are independent hashes of m.
_EVENTS = """INSERT INTO {db}.email_events_in
  (v, dedupe_key, event_id, message_id, kind, status, raw_type, occurred_at, received_at, source, provider,
   recipient_domain, sender_domain, tags)
SELECT
  2,
  lower(hex(MD5(toString(number)))) AS dedupe_key,
  toString(number) AS event_id,
  concat('m', toString(m)) AS message_id,
  if(status = '', lower(kind_upper), 'status') AS kind,
  nullIf(status, ''),  -- positional: an alias would shadow the inner status below
  lower(if(status = '', kind_upper, status)) AS raw_type,
  occurred, occurred, 'webhook', provider, recipient_domain, sender_domain, tags
FROM (
  SELECT number, intDiv(number, 3) AS m, number % 3 AS slot,
    cityHash64(m, 1) AS h1, cityHash64(m, 2) AS h2, cityHash64(m, 3) AS h3,
    h1 % 1000 AS fate,
    if(h2 % 10 < 3, 'twilio', 'sendgrid') AS provider,
    ['acme.com', 'shop.example', 'news.example', 'billing.example', 'alerts.example'][1 + h2 % 5]
      AS sender_domain,
    multiIf(h3 % 100 < 25, 'gmail.com', h3 % 100 < 35, 'outlook.com', h3 % 100 < 40, 'yahoo.com',
      concat('d', toString(toUInt32(pow(2000, (h3 % 100000) / 100000.0))), '.example')) AS recipient_domain,
    multiIf(h1 % 10 < 4, map(), h1 % 10 < 8, map('campaign', concat('c', toString(h2 % 4))),
      map('campaign', concat('c', toString(h2 % 4)), 'env', 'prod')) AS tags,
    toDateTime64({start:Int64}, 3, 'UTC') + toIntervalMillisecond(h1 % 86400000) AS queued,
    toIntervalMillisecond(200 + h2 % 3000 + if(h3 % 50 = 0, h3 % 600000, 0)) AS to_outcome,
    multiIf(fate < 910, 'DELIVERED', fate < 960, 'UNDELIVERED', fate < 980, 'FAILED', '') AS outcome,
    multiIf(slot = 0, 'QUEUED', slot = 1, outcome,
      outcome = 'DELIVERED' AND h3 % 100 < 45, 'OPENED', provider = 'twilio', 'SENT', '') AS status,
    multiIf(status != '', '', slot = 2 AND h2 % 3 = 0, 'CLICK', 'DEFERRED') AS kind_upper,
    multiIf(slot = 0, queued, slot = 1 OR status = '', queued + to_outcome,
      status = 'SENT', queued + toIntervalMillisecond(100),
      queued + to_outcome + toIntervalSecond(30 + h3 % 7200)) AS occurred
  FROM numbers({offset:UInt64}, {count:UInt64})
)"""


def fill(store: ClickHouseStore, events: int, out: Console) -> None:
    db = store.database
    with out.status("generating events") as status:
        for offset in range(0, events, CHUNK):
            status.update(f"email_events_in: {offset:,} / {events:,}")
            params: dict[str, Any] = {
                "start": int(DAY.timestamp()),
                "offset": offset,
                "count": min(CHUNK, events - offset),
            }
            store.client.command(_EVENTS.replace("{db}", db), parameters=params)


def median_seconds(run: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def timings(service: AnalyticsService, window: q.Window, bucket: int) -> dict[str, float]:
    worst = q.Breakdown("recipient_domain", "failure", 10, 100)
    by_tag = q.Breakdown("tag", "messages", 10, 1)
    by_provider = q.Breakdown("mailbox_provider", "spam", 10, 100)
    by_class = q.Breakdown("bounce_classification", "messages", 10, 1)
    runs: dict[str, Callable[[], Any]] = {
        "summary": lambda: service.summary(window),
        f"timeseries (bucket {bucket} s)": lambda: service.timeseries(window, bucket),
        f"latency (bucket {bucket} s)": lambda: service.latency(window, bucket),
        "breakdown recipient_domain": lambda: service.breakdown(window, worst),
        "breakdown tag": lambda: service.breakdown(window, by_tag),
        "breakdown mailbox_provider": lambda: service.breakdown(window, by_provider),
        "breakdown bounce_classification": lambda: service.breakdown(window, by_class),
        "funnel": lambda: service.funnel(window),
        "alerts": lambda: service.alerts(window, 50),
        "summary, filtered": lambda: service.summary(
            q.Window(window.start, window.end, q.Filters(sender_domain="acme.com", tag="campaign=c1"))
        ),
    }
    return {name: median_seconds(run) for name, run in runs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.analytics_queries", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=10_000_000, help="events to generate (default 10M)")
    parser.add_argument("--path", type=Path, help="chDB directory (default: a temporary one)")
    args = parser.parse_args(argv)
    out = Console()
    with tempfile.TemporaryDirectory(prefix="mailpulse-bench-") as tmp:
        path = args.path or Path(tmp)
        store = ClickHouseStore(connect(f"chdb://{path}"), "bench")
        store.migrate()
        [(existing,)] = store.query("SELECT count() FROM bench.email_events")
        started = time.perf_counter()
        if existing != args.events:
            store.client.command("TRUNCATE TABLE bench.email_events")
            for rollup in DERIVED_TABLES:
                store.client.command(f"TRUNCATE TABLE bench.{rollup}")
            fill(store, args.events, out)
        counts = {
            t: store.query(f"SELECT count() FROM bench.{t}")[0][0] for t in ("email_events", *DERIVED_TABLES)
        }
        out.print(
            f"loaded in {time.perf_counter() - started:.1f} s: "
            + ", ".join(f"{t} {n:,} rows" for t, n in counts.items())
        )
        service = AnalyticsService(store.client, "bench")
        day = q.Window(DAY, DAY + timedelta(days=1))
        hour = q.Window(DAY + timedelta(hours=12), DAY + timedelta(hours=13))
        results = {"day": timings(service, day, 300), "hour": timings(service, hour, 60)}
        whole: dict[str, Callable[[], Any]] = {
            "messages: count by status": lambda: store.query(
                "SELECT status, count() FROM bench.messages GROUP BY status"
            ),
            "messages: one message": lambda: store.query(
                "SELECT * FROM bench.messages WHERE message_id = 'm12345'"
            ),
            "transitions: one message": lambda: store.query(
                "SELECT * FROM bench.transitions WHERE message_id = 'm12345'"
            ),
        }
        for name, run in whole.items():
            seconds = median_seconds(run)
            results["day"][name] = results["hour"][name] = seconds
        table = Table(title=f"analytics queries over {args.events:,} events (median of 3, wall clock)")
        table.add_column("query")
        table.add_column("whole day, s", justify="right")
        table.add_column("one hour, s", justify="right")  # the messages rows: no window, the same
        for (name, day_s), hour_s in zip(results["day"].items(), results["hour"].values(), strict=True):
            table.add_row(name, f"{day_s:.3f}", f"{hour_s:.3f}")
        out.print(table)
        slowest = max(max(r.values()) for r in results.values())
        out.print(f"slowest query: {slowest:.3f} s ({'under' if slowest < 1 else 'OVER'} the 1 s target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
