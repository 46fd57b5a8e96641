"""The dashboard's formatting (analytics/static/format.js) gives what schemas/outcomes.py gives, run with
node on the same values."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from schemas.outcomes import human_duration

FORMAT_JS = Path(__file__).resolve().parents[2] / "analytics/static/format.js"
NODE = shutil.which("node")
DURATIONS = [0, 1, 499.4, 999, 999.4, 999.6, 1000, 1049, 59_940, 59_999, 60_000, 90_000, 2_913_545,
             3_594_000, 3_599_000, 5_400_000, 86_399_999, 86_400_000, 90 * 86_400_000,
             1234 * 86_400_000]  # fmt: skip


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_durations_match_the_python_formatting() -> None:
    assert NODE is not None
    script = (
        f"const f = require({json.dumps(str(FORMAT_JS))});"
        f"console.log(JSON.stringify({json.dumps(DURATIONS)}.map(f.duration)))"
    )
    done = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == [human_duration(ms) for ms in DURATIONS]
    assert human_duration(2_913_545) == "48.6 min"
