"""Shared fixtures: one real Tansu broker and one real chDB directory per test session.

chDB opens one data directory per process, so tests isolate by database name; they isolate on the
broker by topic and consumer-group names.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from adapters.clickhouse import ClickHouseStore, connect
from mailpulse.broker import EmbeddedBroker
from mailpulse.settings import Settings


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def clickhouse(chdb_dir: Path) -> Client:
    return connect(f"chdb://{chdb_dir}")


@pytest.fixture
def settings(broker: EmbeddedBroker, chdb_dir: Path, tmp_path: Path) -> Settings:
    """Settings with a fresh database, topics and consumer group for this test."""
    suffix = uuid.uuid4().hex[:10]
    return Settings(
        data_dir=tmp_path,
        kafka_bootstrap=broker.bootstrap,
        clickhouse_url=f"chdb://{chdb_dir}",
        clickhouse_database=f"t_{suffix}",
        status_topic=f"status-{suffix}",
        deadletter_topic=f"dead-{suffix}",
        alerts_topic=f"alerts-{suffix}",
        consumer_group=f"group-{suffix}",
        partitions=3,
        batch_wait_ms=200,
        consumer_session_timeout_ms=2000,
    )


@pytest.fixture
def store(settings: Settings, clickhouse: Client) -> ClickHouseStore:
    store = ClickHouseStore(clickhouse, settings.clickhouse_database)
    store.migrate()
    return store
