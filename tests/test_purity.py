"""The core stays pure: schemas/ (signatures and privacy included), storage/, the poller's decisions,
the alert rules, state machine and queries, and the Email API simulator's core import no web framework,
HTTP client, Kafka or ClickHouse client."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("starlette", "aiokafka", "clickhouse_connect", "chdb", "httpx", "uvicorn", "prometheus_client")
PURE = [
    *sorted((ROOT / "schemas").glob("*.py")),
    *sorted((ROOT / "storage").rglob("*.py")),
    ROOT / "poller" / "decisions.py",
    ROOT / "adapters" / "ratelimit.py",
    *(ROOT / "alerting" / f"{name}.py" for name in ("state_machine", "query", "evaluate")),
    *(
        ROOT / "simulator" / f"{name}.py"
        for name in (
            "clock",
            "model",
            "lifecycle",
            "validation",
            "paging",
            "core",
            "payloads",
            "webhooks",
            "truth",
            "traffic",
        )
    ),
]


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_modules_import_no_adapter() -> None:
    for path in PURE:
        bad = {name for name in imported(path) if name.split(".")[0] in FORBIDDEN}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
