"""Fault test of the embedded default: `mailpulse run` SIGKILLed again and again under SendGrid webhook
traffic that re-posts whatever was not acknowledged, as SendGrid does. The embedded broker dies with
each kill, taking every record it held; still, every event of every acknowledged post ends up loaded
exactly once.

`mailpulse run` holds its chDB directory, so the tables are read by another process after it stopped
(``dump_tables``), and progress meanwhile through the analytics API it serves.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailpulse.broker import free_port
from tests.cli_process import start_cli
from tests.integration.groundtruth import Tables

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

REPO = Path(__file__).resolve().parents[2]
T0 = 1_763_900_000
SENDERS = 4  # each posts two messages' events (4 events) at a time, until the kills are done
KILLS = 5
KILL_AFTER_S = (0.3, 1.5)  # after the restarted process answered its first post
TOKEN = "embedded-crash-token"
DEADLINE_S = 400.0


def message_events(n: int) -> list[dict[str, Any]]:
    xid = f"crashtest{n:06d}"
    common = {"email": f"user{n}@example.com", "sg_message_id": f"{xid}.filter-0", "smtp-id": f"<{xid}@x>"}
    return [
        {**common, "event": "processed", "timestamp": T0 + n, "sg_event_id": f"p-{n}"},
        {**common, "event": "delivered", "timestamp": T0 + n + 5, "sg_event_id": f"d-{n}"},
    ]


def post(index: int) -> list[dict[str, Any]]:
    """Post ``index``: two messages' events, each delivered before processed (out of order)."""
    return [e for n in (2 * index, 2 * index + 1) for e in reversed(message_events(n))]


class Run:
    """`mailpulse run` on one data directory and fixed ports, restarted after each kill."""

    def __init__(self, tmp: Path) -> None:
        self.ingest_port, self.dashboard_port = free_port(), free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MAILPULSE_")},
            "MAILPULSE_DATA_DIR": str(tmp / "data"),
            "MAILPULSE_INGEST_PORT": str(self.ingest_port),
            "MAILPULSE_DASHBOARD_PORT": str(self.dashboard_port),
            "MAILPULSE_API_TOKEN": TOKEN,
            "MAILPULSE_ALLOW_UNSIGNED": "true",
            "MAILPULSE_BATCH_WAIT_MS": "200",
            "MAILPULSE_CONSUMER_SESSION_TIMEOUT_MS": "2000",
            "MAILPULSE_JOURNAL_SEAL_S": "0.5",  # segments sealed and trimmed while the test runs
            "MAILPULSE_ALERTS_INTERVAL_S": "60",
        }
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []

    def start(self) -> None:
        self.proc, self.lines = start_cli(["run"], self.env, "Ctrl-C stops")
        assert self.proc.poll() is None, self.lines

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=90) == 0, self.lines[-30:]

    @property
    def journal_segments(self) -> list[Path]:
        return sorted((Path(self.env["MAILPULSE_DATA_DIR"]) / "journal").glob("*.journal"))


class Traffic:
    """SendGrid posts, new ones until the kills are done, every one re-posted until answered 200 (a
    post cut off by a kill, or refused, is retried as SendGrid retries)."""

    def __init__(self) -> None:
        self.issued = 0
        self.acknowledged: set[int] = set()
        self.retry: list[int] = []
        self.kills_done = asyncio.Event()

    def take(self) -> int | None:
        if self.retry:
            return self.retry.pop()
        if self.kills_done.is_set():
            return None
        self.issued += 1
        return self.issued - 1

    async def send(self, run: Run) -> None:
        url = f"http://127.0.0.1:{run.ingest_port}/webhooks/sendgrid/events"

        async def sender(client: httpx.AsyncClient) -> None:
            while (index := self.take()) is not None:
                try:
                    answer = await client.post(url, json=post(index))
                    ok = answer.status_code == 200
                    if not ok:
                        assert answer.status_code == 503, answer.text  # only "retry later" is expected
                except httpx.TransportError:
                    ok = False
                if ok:
                    self.acknowledged.add(index)
                else:
                    self.retry.append(index)
                    await asyncio.sleep(0.2)

        async with httpx.AsyncClient(timeout=10) as client:
            await asyncio.gather(*(sender(client) for _ in range(SENDERS)))

    async def kill_repeatedly(self, run: Run) -> None:
        """Kill the server KILLS times, each a random moment after it acknowledged its first post."""
        rng = random.Random(11)
        for _ in range(KILLS):
            seen = len(self.acknowledged)
            for _ in range(600):  # bounded: the restarted process answers its first post
                if len(self.acknowledged) > seen:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(rng.uniform(*KILL_AFTER_S))
            run.kill()
            await asyncio.to_thread(run.start)
        self.kills_done.set()


def loaded_messages(run: Run) -> int:
    """Messages with an outcome, by the running server's analytics API (0 while it cannot answer)."""
    around = {"from": "2025-11-22T00:00:00+00:00", "to": "2025-11-25T00:00:00+00:00"}
    try:
        summary = httpx.get(
            f"http://127.0.0.1:{run.dashboard_port}/api/summary",
            params=around,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ).json()
    except (httpx.TransportError, ValueError):
        return 0
    return int(summary.get("messages") or 0)


def read_back(run: Run, tmp: Path) -> Tables:
    out = tmp / "tables.json"
    dsn = f"chdb://{(Path(run.env['MAILPULSE_DATA_DIR']) / 'clickhouse').resolve()}"
    subprocess.run(
        [sys.executable, "-m", "tests.integration.dump_tables", dsn, "mailpulse", str(out)],
        cwd=REPO,
        check=True,
        timeout=180,
    )
    return Tables.from_json(out.read_bytes())


def test_sigkilled_run_loses_nothing_it_acknowledged(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.start()
    traffic = Traffic()

    async def send_and_kill() -> None:
        async with asyncio.timeout(DEADLINE_S):
            sending = asyncio.create_task(traffic.send(run))
            await traffic.kill_repeatedly(run)
            await sending

    try:
        asyncio.run(send_and_kill())
        assert traffic.acknowledged == set(range(traffic.issued))  # every post answered 200 in the end
        messages = 2 * traffic.issued
        deadline = time.monotonic() + 120
        while loaded_messages(run) < messages and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        run.stop()

    tables = read_back(run, tmp_path)
    expected = {
        (f"crashtest{n:06d}:user{n}@example.com", label)
        for n in range(messages)
        for label in ("QUEUED", "DELIVERED")
    }
    loaded = [(m, label) for m, label, _ in tables.events]
    assert len(loaded) == len(set(loaded)), "an event was loaded twice"
    assert set(loaded) == expected
    assert {row[0] for row in tables.messages.values()} == {"DELIVERED"}
    assert len(tables.messages) == messages
