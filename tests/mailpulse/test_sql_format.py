"""`mailpulse sql`: a query with its own FORMAT clause is passed through and printed as ClickHouse
formats it; without one the answer stays TSV with a header."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailpulse.sqltext import own_format


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("SELECT 1 FORMAT TSV", "TSV"),
        ("SELECT 1 format JSONEachRow ;; \n", "JSONEachRow"),
        ("SELECT 1\nFORMAT CSVWithNames;", "CSVWithNames"),
        ("SELECT 'x FORMAT TSV'", None),
        ("SELECT 1 -- FORMAT TSV", None),
        ("SELECT 1 /* FORMAT TSV */", None),
        ("SELECT format('{}', 'a') AS format", None),
        ("SELECT * FROM (SELECT 1 FORMAT TSV)", None),
        ("SELECT 'it''s' AS s FORMAT JSON", "JSON"),
        ("SELECT 1", None),
    ],
)
def test_own_format(query: str, name: str | None) -> None:
    assert own_format(query) == name


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


@pytest.mark.clickhouse
def test_sql_passes_its_own_format_through_and_defaults_to_tsv(tmp_path: Path) -> None:
    own = sql(tmp_path, "SELECT 1 AS a, 'x y' AS b FORMAT JSONEachRow;")
    assert own.returncode == 0, own.stderr.decode()
    assert own.stdout == b'{"a":1,"b":"x y"}\n'
    tsv = sql(tmp_path, "SELECT 1 AS a, 'FORMAT JSON' AS b")
    assert tsv.returncode == 0, tsv.stderr.decode()
    assert tsv.stdout == b"a\tb\n1\tFORMAT JSON\n"
