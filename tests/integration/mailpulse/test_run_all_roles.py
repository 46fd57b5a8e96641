"""`mailpulse run` as a new user starts it: every role in one process on the embedded defaults. A webhook
posted to its ingest reaches the dashboard's API through Kafka, the processor and ClickHouse, the alert
runner records its evaluations, and SIGTERM stops it all with exit status 0."""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.cli_process import start_cli
from tests.webhook_events import T0, one_message_batch

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
TOKEN = "run-test-token"
AROUND_T0 = {  # the slice's message is from a fixed day
    "from": datetime.fromtimestamp(T0 - 86400, UTC).isoformat(),
    "to": datetime.fromtimestamp(T0 + 86400, UTC).isoformat(),
}


def test_run_serves_every_role_until_sigterm(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILPULSE_")},
        "MAILPULSE_DATA_DIR": str(tmp_path),
        "MAILPULSE_INGEST_PORT": "0",
        "MAILPULSE_DASHBOARD_PORT": "0",
        "MAILPULSE_API_TOKEN": TOKEN,
        "MAILPULSE_ALERTS_INTERVAL_S": "1",
        "MAILPULSE_BATCH_WAIT_MS": "200",
        "MAILPULSE_CONSUMER_SESSION_TIMEOUT_MS": "2000",
    }
    proc, lines = start_cli(["run"], env, "Ctrl-C stops")
    try:
        assert proc.poll() is None, lines
        [banner] = [line for line in lines if "Ctrl-C stops" in line]
        ingest = re.search(r"ingest on (http://\S+?);", banner)
        dashboard = re.search(r"dashboard (http://\S+?)/dashboard;", banner)
        assert ingest and dashboard, banner
        # The configured token is the operator's: never printed. On the embedded default, `run` says
        # that it accepts unsigned events.
        assert not any(TOKEN in line for line in lines), lines
        assert any("MAILPULSE_ALLOW_UNSIGNED=true" in line for line in lines), lines
        headers = {"Authorization": f"Bearer {TOKEN}"}
        summary: dict[str, object] = {}
        for _ in range(120):  # bounded: about a minute for ingest, Kafka, the processor and the rollup
            try:
                posted = httpx.post(f"{ingest.group(1)}/webhooks/sendgrid/events", json=one_message_batch())
                if posted.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        for _ in range(120):
            try:
                summary = httpx.get(
                    f"{dashboard.group(1)}/api/summary", params=AROUND_T0, headers=headers
                ).json()
            except httpx.TransportError:
                summary = {}
            if summary.get("messages"):
                break
            time.sleep(0.5)
        assert summary.get("messages") == 1, (summary, lines)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, lines
