"""The analyst views (migrations 4, 8, 10) on the known-answer load: exact without FINAL or aggregate
states, the same figures as the API."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from clickhouse_connect.driver.client import Client

from adapters.clickhouse import ClickHouseStore
from tests.integration.analytics import knownanswer as ka

pytestmark = [pytest.mark.clickhouse]
DAY = ka.FROM.replace(hour=0)


@pytest.fixture(scope="module")
def loaded(clickhouse: Client) -> tuple[ClickHouseStore, list[ka.Message]]:
    store = ClickHouseStore(clickhouse, f"views_{uuid.uuid4().hex[:10]}")
    store.migrate()
    plan = ka.plan(300, seed=9)
    ka.load(store, plan)
    return store, plan


def test_stats_daily_per_domains(loaded: tuple[ClickHouseStore, list[ka.Message]]) -> None:
    store, plan = loaded
    rows = store.client.query(
        f"SELECT provider, sender_domain, recipient_domain, delivered, undelivered, opened, outcomes,"
        f" delivered_outcomes, bounced_outcomes, failed_outcomes, canceled_outcomes, delivery_rate,"
        f" bounce_rate, failed_rate, canceled_rate, failure_rate, open_rate, click_rate"
        f" FROM {store.database}.stats_daily WHERE day = {{day:Date}}",
        parameters={"day": DAY.date()},
    ).named_results()
    found = 0
    for row in rows:
        found += 1
        filters = {k: row[k] for k in ("provider", "sender_domain", "recipient_domain")}
        want = ka.summary(plan, filters, DAY, DAY + timedelta(days=1))
        assert (row["delivered"], row["undelivered"], row["opened"]) == (
            want["volumes"]["DELIVERED"], want["volumes"]["UNDELIVERED"], want["volumes"]["OPENED"],
        )  # fmt: skip
        assert row["outcomes"] == want["messages"]
        counts, rates = want["counts"], want["rates"]
        for name in ("delivered", "bounced", "failed", "canceled"):
            assert row[f"{name}_outcomes"] == counts[name]
        columns = {"delivered": "delivery_rate", "bounced": "bounce_rate", "failed": "failed_rate",
                   "canceled": "canceled_rate", "failure": "failure_rate", "opened": "open_rate",
                   "clicked": "click_rate"}  # fmt: skip
        assert {name: row[column] for name, column in columns.items()} == {n: rates[n] for n in columns}
    assert found > 10


def test_stats_hourly_and_by_tag_sum_to_the_known_answer(
    loaded: tuple[ClickHouseStore, list[ka.Message]],
) -> None:
    store, plan = loaded
    hour = ka.FROM + timedelta(hours=1)
    [(outcomes,)] = store.query(
        f"SELECT sum(outcomes) FROM {store.database}.stats_hourly WHERE hour = {{h:DateTime}}",
        {"h": hour.replace(tzinfo=None)},
    )
    # Distinct per (provider, domains) group: a message belongs to exactly one, so the sum is exact.
    assert outcomes == ka.summary(plan, {}, hour, hour + timedelta(hours=1))["messages"] > 0
    tags = dict(store.query(f"SELECT tag, delivered FROM {store.database}.stats_daily_by_tag"))
    for tag in ("campaign=a", "campaign=b", "env=prod"):
        assert (
            tags[tag] == ka.summary(plan, {"tag": tag}, DAY, DAY + timedelta(days=1))["volumes"]["DELIVERED"]
        )


def test_message_latency_one_row_per_message(loaded: tuple[ClickHouseStore, list[ka.Message]]) -> None:
    store, plan = loaded
    rows = dict(store.query(f"SELECT message_id, time_to_deliver_ms FROM {store.database}.message_latency"))
    assert len(rows) == len(plan)
    for m in plan:
        delivered, begun = m.first("DELIVERED"), m.first("SENT") or m.first("QUEUED")
        expected = round((delivered - begun) / timedelta(milliseconds=1)) if delivered and begun else None
        assert rows[m.id] == expected, m.id
