"""The core stays pure: schemas/ (signatures and privacy included), storage/, the poller's decisions,
the token bucket, the alert rules, state machine and queries, the analytics queries and the Email API
simulator's core import no web framework, HTTP client, Kafka or ClickHouse client."""

from __future__ import annotations

from tests.imports import ROOT, imported_modules

FORBIDDEN = ("starlette", "aiokafka", "clickhouse_connect", "chdb", "httpx", "uvicorn", "prometheus_client")
PURE = [
    *sorted((ROOT / "schemas").glob("*.py")),
    *sorted((ROOT / "storage").rglob("*.py")),
    ROOT / "poller" / "decisions.py",
    ROOT / "adapters" / "ratelimit.py",
    *(ROOT / "alerting" / f"{name}.py" for name in ("state_machine", "query", "evaluate")),
    ROOT / "analytics" / "queries.py",
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


def test_core_modules_import_no_adapter() -> None:
    for path in PURE:
        bad = {name for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
