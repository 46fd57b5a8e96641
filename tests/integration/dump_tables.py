"""Dump a mailpulse database's tables as JSON (``groundtruth.Tables``), from a process of its own.

chDB opens one data directory per process: a test whose process holds another directory reads a
subprocess's tables through this script.

    python -m tests.integration.dump_tables chdb:///path/to/dir database out.json
"""

from __future__ import annotations

import sys
from pathlib import Path

from adapters.clickhouse import connect
from tests.integration.groundtruth import read_tables


def main(argv: list[str]) -> int:
    dsn, database, out = argv
    Path(out).write_bytes(read_tables(connect(dsn), database).to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
