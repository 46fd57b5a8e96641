"""Measurement 4, the plain consumer: what users commonly write to load a topic into ClickHouse, as the
comparison for the processor. getmany, ``Envelope.model_validate_json`` per record, one row of the event
columns per record inserted into one ReplacingMergeTree (a copy of email_events without its views),
commit after the insert. It does less than mailpulse: no state, no rollups, no dead letters, no replay
of a batch cut short by a crash."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from bench.ceiling import Fetched, timed_drain
from schemas.event import Envelope

TABLE = "email_events"
COLUMNS = (
    "message_id", "dedupe_key", "event_id", "provider_message_id", "operation_id", "kind", "status",
    "raw_type", "occurred_at", "received_at", "source", "provider", "recipient", "recipient_domain",
    "sender", "sender_domain", "tags", "custom_args", "categories", "reason", "smtp_status", "bounce_type",
    "bounce_classification", "attempt", "machine_open", "url", "kafka_partition", "kafka_offset",
)  # fmt: skip


def create_table(client: Client, database: str, like: str) -> None:
    """``database``.email_events as a bare copy of ``like``.email_events (same columns, engine, key)."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(f"CREATE TABLE IF NOT EXISTS {database}.{TABLE} AS {like}.{TABLE}")


def row(value: bytes, partition: int, offset: int) -> list[Any]:
    envelope = Envelope.model_validate_json(value)
    e = envelope.event
    return [
        e.message_id, envelope.dedupe_key, e.event_id, e.provider_message_id, e.operation_id, e.kind,
        e.status or "", e.raw_type, e.occurred_at, e.received_at, e.source, e.provider, e.recipient,
        e.recipient_domain or "", e.sender, e.sender_domain or "", e.tags, e.custom_args,
        list(e.categories), e.reason, e.smtp_status, e.bounce_type, e.bounce_classification, e.attempt,
        e.machine_open, e.url, partition, offset,
    ]  # fmt: skip


async def drain(
    client: Client, database: str, bootstrap: str, topic: str, records: int, batch: int, wait_ms: int
) -> float:
    """Seconds to consume, validate, insert and commit ``records`` records."""

    def insert(fetched: Fetched) -> None:
        rows = [row(r.value or b"", r.partition, r.offset) for rs in fetched.values() for r in rs]
        client.insert(f"{database}.{TABLE}", rows, column_names=list(COLUMNS))

    return await timed_drain(bootstrap, topic, records, batch, wait_ms, insert)
