"""Headless Chromium against the dashboard served by the real app over uvicorn: the helpers the browser
tests share. Virtual time lets the page load, fetch and draw; nothing waits on the wall clock."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from mailpulse.broker import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextlib.contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """``app`` on uvicorn on a free loopback port, in a thread, for the duration of the block."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):  # at most ~10 s
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def chromium(profile: Path, *args: str) -> str:
    """Run headless Chromium once; its stdout. Virtual time lets the page load, fetch and draw, then
    Chromium stops on its own: nothing here waits on the wall clock."""
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}",
        "--virtual-time-budget=15000", *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Dom(HTMLParser):
    """Attributes of elements by id, the text of leaf elements by id, and the alert rows shown."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.attrs: dict[str, dict[str, str | None]] = {}
        self.text: dict[str, str] = {}
        self.alert_rows = 0
        self._current: str | None = None
        self._in_alerts = False
        self._row_started = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self._current = named.get("id")
        if self._current:
            self.attrs[self._current] = named
        self._in_alerts = self._in_alerts or self._current == "alerts"
        if self._in_alerts and tag == "tr":
            self._row_started = True
        elif self._in_alerts and tag == "td" and self._row_started:
            self._row_started = False
            self.alert_rows += named.get("class") != "empty"  # the "no alerts" placeholder row

    def handle_endtag(self, tag: str) -> None:
        self._current = None
        if tag == "table":
            self._in_alerts = False

    def handle_data(self, data: str) -> None:
        if self._current:
            self.text[self._current] = self.text.get(self._current, "") + data
