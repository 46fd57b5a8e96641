"""`mailpulse report` as a subprocess against a chDB directory this test filled (one chDB path per
process: the filling happens in a child process too), checking the known figures appear, in human
units, and that `--json` gives them exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.analytics import knownanswer as ka

pytestmark = [pytest.mark.clickhouse]

FILL = """
import sys
from adapters.clickhouse import ClickHouseStore, connect
from tests.integration.analytics import knownanswer as ka
store = ClickHouseStore(connect("chdb://" + sys.argv[1]), "mailpulse")
store.migrate()
ka.load(store, ka.plan())
"""


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_report_prints_the_known_figures(tmp_path: Path) -> None:
    chdb = tmp_path / "ch"
    env = {**os.environ, "COLUMNS": "200", "MAILPULSE_DATA_DIR": str(tmp_path)}
    env.pop("MAILPULSE_CLICKHOUSE_URL", None)
    filled = run("-c", FILL, str(chdb), env=env)
    assert filled.returncode == 0, filled.stderr
    url = f"chdb://{chdb}"
    common = ["-m", "mailpulse.cli", "report", "--clickhouse-url", url, "--from", ka.iso(ka.FROM)]
    done = run(*common, "--to", ka.iso(ka.TO), "--min-volume", "20", env=env)
    assert done.returncode == 0, done.stderr
    want = ka.summary(ka.plan(), {})
    out = done.stdout
    assert f"{ka.iso(ka.FROM)} .. {ka.iso(ka.TO)}" in out
    counts, rates = want["counts"], want["rates"]
    for name in ("delivered", "bounced", "failed", "canceled"):
        assert f"{counts[name]:,}" in out and f"{rates[name]:.2%}" in out, name
    assert f"{want['messages']:,}" in out and f"{rates['failure']:.2%}" in out
    for stage, n in want["funnel"]:
        assert f"{stage}" in out and f"{n:,}" in out
    p99 = want["time_to_deliver_ms"]["p99"].expected
    assert p99 > 60_000 and f"{p99 / 60_000:.1f} min" in out, "durations read in human units"
    worst = ka.breakdown(ka.plan(), {}, "recipient_domain", "failure", 10, 20)["rows"][0]
    assert worst["key"] in out and f"{worst['rates']['failure']:.2%}" in out

    as_json = run(*common, "--to", ka.iso(ka.TO), "--min-volume", "20", "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    for key in ("from", "to", "filters", "messages", "pending", "counts", "rates", "funnel", "volumes"):
        assert body[key] == want[key], key
    assert {k: body["time_to_deliver_ms"][k] for k in ("p50", "p95", "p99", "count")} == {
        k: want["time_to_deliver_ms"][k] for k in ("p50", "p95", "p99", "count")
    }
    assert body["worst_recipient_domains"]["rows"][0]["key"] == worst["key"]
    providers = ka.breakdown(ka.plan(), {}, "mailbox_provider", "messages", 1000, 1)["rows"]
    assert body["mailbox_providers"]["rows"] == [
        {k: v for k, v in row.items() if k != "volumes"} for row in providers
    ]
    classes = ka.breakdown(ka.plan(), {}, "bounce_classification", "bounced", 1000, 1)["rows"]
    assert body["bounce_classifications"]["rows"] == [
        {k: v for k, v in row.items() if k != "volumes"} for row in classes if row["counts"]["bounced"]
    ]
    assert sum(r["counts"]["bounced"] for r in body["bounce_classifications"]["rows"]) == counts["bounced"]
    assert {r["key"] for r in body["bounce_classifications"]["rows"]} > set(ka.CLASSIFICATIONS)
    assert counts["spam_reported"] and counts["blocked"] and counts["deferred"] and counts["unsubscribed"]
    # The tables: signals, providers by name, classifications.
    assert (
        f"{rates['spam']:.3%}" in out and f"{rates['block']:.2%}" in out and f"{rates['deferral']:.2%}" in out
    )
    assert "Google (Gmail)" in out and "Apple (iCloud)" in out and "Reputation" in out

    google = run(*common, "--to", ka.iso(ka.TO), "--mailbox-provider", "google", "--json", env=env)
    assert (
        json.loads(google.stdout)["counts"] == ka.summary(ka.plan(), {"mailbox_provider": "google"})["counts"]
    )
    bad = run(*common, "--to", "not-a-time", "--tag", "x", env=env)
    assert bad.returncode == 2
    assert (
        "to: 'not-a-time' is not an ISO-8601 time" in bad.stdout
        and "tag: 'x' must be key=value" in bad.stdout
    )
