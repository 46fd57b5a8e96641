"""`mailpulse report` as a subprocess against a chDB directory this test filled (one chDB path per
process: the filling happens in a child process too), checking the known figures appear."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.analytics import knownanswer as ka

pytestmark = [pytest.mark.clickhouse]

FILL = """
import sys
from processors.store import ClickHouseStore, connect
from tests.analytics import knownanswer as ka
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
    assert f"{want['volumes']['DELIVERED']:,}" in out and f"{want['outcomes']:,}" in out
    assert f"{want['failure_rate']:.2%}" in out and f"{want['delivery_rate']:.2%}" in out
    p50 = want["time_to_deliver_ms"]["p50"].expected
    assert f"{p50:,.0f} ms" in out
    worst = ka.breakdown(ka.plan(), {}, "recipient_domain", "failure_rate", 10, 20)["rows"][0]
    assert worst["key"] in out and f"{worst['failure_rate']:.2%}" in out
    bad = run(*common, "--to", "not-a-time", "--tag", "x", env=env)
    assert bad.returncode == 2
    assert (
        "to: 'not-a-time' is not an ISO-8601 time" in bad.stdout
        and "tag: 'x' must be key=value" in bad.stdout
    )
