"""The Grafana dashboard's panels as files: outcomes by schemas.outcomes, the provisioned datasource."""

from __future__ import annotations

import re

from schemas.outcomes import sql_final_status
from storage.tables import STATUS_BITS
from tests.analytics.grafana_dashboard import DATASOURCES, panels


def test_outcome_panels_use_the_final_status_of_schemas_outcomes() -> None:
    final = sql_final_status(lambda s: f"bitTest(m, {STATUS_BITS.index(s.value)})")
    titles = ("Headline", "Failure and bounce rate", "Delivery funnel", "Worst recipient domains")
    for panel in panels():
        if panel["title"] in titles:
            assert final in panel["targets"][0]["rawSql"], panel["title"]


def test_every_panel_queries_the_provisioned_clickhouse_datasource() -> None:
    provisioned = dict(re.findall(r"uid:\s*(\S+)\s*\n\s*type:\s*(\S+)", DATASOURCES.read_text()))
    found = panels()
    assert len(found) == 7
    for panel in found:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            source = target["datasource"]
            assert provisioned[source["uid"]] == source["type"] == "grafana-clickhouse-datasource"
            assert target["editorType"] == "sql" and target["rawSql"].strip()
    ids = [p["id"] for p in found]
    assert len(set(ids)) == len(ids)
