"""`mailpulse dashboard` as a user runs it (a subprocess with its own chDB directory): it prints a URL whose
token opens the API, generates that token only when none is configured, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.cli_process import start_cli

pytestmark = [pytest.mark.clickhouse]


def start(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[str], list[str]]:
    """The command started; the lines it printed up to and including the URL."""
    inherited = {k: v for k, v in os.environ.items() if k != "MAILPULSE_API_TOKEN"}
    environment = {**inherited, "MAILPULSE_DATA_DIR": str(tmp_path), "MAILPULSE_DASHBOARD_PORT": "0", **env}
    return start_cli(["dashboard"], environment, "dashboard on http")


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def wait_healthy(base: str) -> None:
    for _ in range(100):  # bounded: about 10 s
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base} never became healthy")


def test_the_printed_url_opens_the_dashboard_and_its_api(tmp_path: Path) -> None:
    proc, lines = start(tmp_path)
    try:
        urls = [m.group(0) for line in lines if (m := re.search(r"http://\S+/dashboard#token=\S+", line))]
        assert len(urls) == 1, (proc.poll(), lines)
        url = urls[0]
        assert any("for this run only" in line for line in lines)
        parts = urlsplit(url)
        base, token = f"http://{parts.netloc}", parse_qs(parts.fragment)["token"][0]
        wait_healthy(base)
        assert len(token) >= 32
        assert httpx.get(f"{base}/dashboard").status_code == 200
        assert httpx.get(f"{base}/api/summary").status_code == 401
        answer = httpx.get(f"{base}/api/summary", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and answer.json()["messages"] == 0
    finally:
        code = stop(proc)
    assert code == 0, lines


def test_a_configured_token_is_used_and_never_printed(tmp_path: Path) -> None:
    proc, lines = start(tmp_path, MAILPULSE_API_TOKEN="kept-across-restarts")
    try:
        # The operator's token stays in its secret: the URL is printed without it.
        [base] = [m.group(1) for line in lines if (m := re.search(r"on (http://\S+)/dashboard$", line))]
        assert not any("kept-across-restarts" in line for line in lines), lines
        assert not any("for this run only" in line for line in lines)
        assert any("#token=<it>" in line for line in lines), lines
        wait_healthy(base)
        headers = {"Authorization": "Bearer kept-across-restarts"}
        assert httpx.get(f"{base}/api/summary", headers=headers).status_code == 200
    finally:
        assert stop(proc) == 0
