"""A `mailpulse` command run as a user runs it: a subprocess whose printed lines the test reads."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Mapping


def start_cli(
    args: list[str], env: Mapping[str, str], ready: str, wait_s: float = 120
) -> tuple[subprocess.Popen[str], list[str]]:
    """Start `mailpulse ARGS`; return it with the lines it printed up to the first containing ``ready``
    (or up to its exit), waiting at most ``wait_s`` (a loaded machine needs a while to open chDB).
    The list keeps growing while the command prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailpulse.cli", *args],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:  # a thread: readline blocks, and a selector cannot see Python's read buffer
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if ready in line:
                seen.set()
        seen.set()  # the process ended

    threading.Thread(target=read, daemon=True).start()
    seen.wait(wait_s)
    return proc, lines
