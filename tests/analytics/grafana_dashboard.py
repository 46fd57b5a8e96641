"""The Grafana dashboard and its datasource as the deployment files define them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "infra/grafana/dashboards/mailpulse.json"
DATASOURCES = ROOT / "infra/grafana/provisioning/datasources/clickhouse.yml"


def panels() -> list[dict[str, Any]]:
    return list(json.loads(DASHBOARD.read_text())["panels"])
