"""`mailpulse sql` on real chDB: a query's own FORMAT clause passes through, TSV with a header otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.clickhouse]


def test_sql_passes_its_own_format_through_and_defaults_to_tsv(tmp_path: Path) -> None:
    own = sql(tmp_path, "SELECT 1 AS a, 'x y' AS b FORMAT JSONEachRow;")
    assert own.returncode == 0, own.stderr.decode()
    assert own.stdout == b'{"a":1,"b":"x y"}\n'
    tsv = sql(tmp_path, "SELECT 1 AS a, 'FORMAT JSON' AS b")
    assert tsv.returncode == 0, tsv.stderr.decode()
    assert tsv.stdout == b"a\tb\n1\tFORMAT JSON\n"


def sql(tmp_path: Path, query: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "MAILPULSE_DATA_DIR": str(tmp_path)}
    env.pop("MAILPULSE_CLICKHOUSE_URL", None)
    url = f"chdb://{tmp_path / 'ch'}"
    return subprocess.run(
        [sys.executable, "-m", "mailpulse.cli", "sql", "--clickhouse-url", url, query],
        capture_output=True,
        timeout=120,
        env=env,
        check=False,
    )
