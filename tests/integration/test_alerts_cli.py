"""`mailpulse alerts` as a process: it evaluates on its interval, serves /healthz and /metrics, reports a
bad rules file clearly, and SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mailpulse.broker import free_port
from mailpulse.runtime import wait_listening
from mailpulse.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def env_for(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    assert settings.kafka_bootstrap is not None
    return {
        **os.environ,
        "MAILPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MAILPULSE_ALERTS_TOPIC": settings.alerts_topic,
        "MAILPULSE_STATUS_TOPIC": settings.status_topic,
        "MAILPULSE_DEADLETTER_TOPIC": settings.deadletter_topic,
        "MAILPULSE_DATA_DIR": str(tmp_path),  # its own chDB directory: one per process
        **extra,
    }


def test_alerts_process_evaluates_serves_metrics_and_stops_on_sigterm(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = env_for(
        settings, tmp_path, MAILPULSE_ALERTS_INTERVAL_S="0.2", MAILPULSE_ALERTS_METRICS_PORT=str(port)
    )

    async def scenario() -> tuple[dict[str, object], str, int]:
        log = (tmp_path / "alerts.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mailpulse.cli", "alerts", env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            await wait_listening("127.0.0.1", port, timeout_s=60)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                health: dict[str, object] = {}
                deadline = time.monotonic() + 30
                while health.get("last_evaluation") is None and time.monotonic() < deadline:
                    health = (await client.get("/healthz")).json()
                    await asyncio.sleep(0.1)
                metrics = (await client.get("/metrics/")).text
            proc.send_signal(signal.SIGTERM)
            return health, metrics, await asyncio.wait_for(proc.wait(), timeout=30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    health, metrics, code = asyncio.run(scenario())
    assert health["status"] == "alive" and health["last_evaluation"] is not None
    assert health["firing"] == []
    assert 'mailpulse_alert_evaluations_total{outcome="ok"}' in metrics
    assert "mailpulse_alert_last_evaluation_timestamp_seconds" in metrics
    assert code == 0, (tmp_path / "alerts.log").read_text()


def test_bad_rules_file_lists_every_problem(settings: Settings, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "x y"\nmetric = "open_rate"\nthreshold = 2\n')
    env = env_for(settings, tmp_path, MAILPULSE_ALERTS_RULES_FILE=str(rules))
    done = subprocess.run(
        [sys.executable, "-m", "mailpulse.cli", "alerts", "--check"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 2
    err = done.stderr.decode()
    assert all(f"rule.0.{field}" in err for field in ("name", "metric", "threshold")), err
