"""Received mail in ClickHouse (real chDB): the inbound columns, their migration into an existing
email_events table, the exact round trip, and an Inbound Parse post through the whole pipeline."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest

from adapters.clickhouse import ClickHouseStore
from mailpulse.settings import Settings
from schemas.event import envelope_json
from schemas.sendgrid_inbound import InboundPost, UploadedFile, parse_inbound
from storage.tables import INBOUND_COLUMNS
from tests.ingest.mail import ATTACHMENTS, MESSAGE_ID, attachment_files, inbound_fields, multipart
from tests.integration.pipeline import running_pipeline, wait_for_records
from tests.schemas.events import inbound_values
from tests.webhook_events import sendgrid_event

pytestmark = [pytest.mark.clickhouse]

RECEIVED = datetime(2026, 11, 23, 10, 0, 9, 250_000, tzinfo=UTC)


def test_older_tables_gain_the_inbound_columns_and_events_round_trip(store: ClickHouseStore) -> None:
    db = store.database
    for column in INBOUND_COLUMNS:  # the table as the first release created it
        store.client.command(f"ALTER TABLE {db}.email_events DROP COLUMN {column}")
    store.client.command(f"CREATE OR REPLACE VIEW {db}.events AS SELECT * FROM {db}.email_events FINAL")
    store.client.command(f"DROP TABLE {db}.schema_migrations")  # the first release recorded none
    store.migrate()
    view_columns = {
        name
        for (name,) in store.query(
            f"SELECT name FROM system.columns WHERE database = '{db}' AND table = 'events'"
        )
    }
    assert set(INBOUND_COLUMNS) <= view_columns

    files = [UploadedFile(part, name, ctype, size) for part, name, ctype, size, _ in ATTACHMENTS]
    mail = parse_inbound(InboundPost(inbound_fields(), files), RECEIVED)
    outbound = mail.model_copy(update={"inbound": None, "message_id": "other", "event_id": "e2"})
    store.load([envelope_json(mail), envelope_json(outbound)], "round-trip")
    for event in (mail, outbound):
        [row] = store.query(
            f"SELECT {', '.join(INBOUND_COLUMNS)} FROM {db}.events WHERE message_id = {{m:String}}",
            {"m": event.message_id},
        )
        *columns, attachments = row
        *expected, expected_attachments = inbound_values(event.inbound)
        assert columns == expected
        assert (orjson.loads(attachments) if attachments else "") == (
            orjson.loads(expected_attachments) if expected_attachments else ""
        )
    [(subject, score, spf, rejected)] = store.query(
        f"SELECT subject, spam_score, spf, JSONExtractBool(attachments, 2, 'rejected') FROM {db}.events "
        "WHERE attachments != ''"
    )
    assert (subject, score, spf, rejected) == ("Invoice and photos", 0.011, "pass", True)


@pytest.mark.kafka
def test_inbound_mail_through_the_pipeline(settings: Settings, store: ClickHouseStore) -> None:
    body, content_type = multipart(inbound_fields(), attachment_files())

    async def scenario() -> None:
        async with running_pipeline(settings, store) as (client, proc):
            for _ in range(2):  # SendGrid retries the same mail: stored once
                answer = await client.post(
                    "/webhooks/sendgrid/inbound", content=body, headers={"content-type": content_type}
                )
                assert answer.status_code == 200, answer.text
            assert (
                await client.post("/webhooks/sendgrid/events", json=[sendgrid_event("processed", 0, 1)])
            ).is_success
            await wait_for_records(proc, 3)

    asyncio.run(scenario())
    db = store.database
    [(status, inbound_at, events)] = store.query(
        f"SELECT status, inbound_at, event_count FROM {db}.messages WHERE message_id = 'inbound:{MESSAGE_ID}'"
    )
    assert (status, events) == ("INBOUND", 1)
    assert inbound_at == datetime(2026, 11, 23, 10, 0, 6)
    [(recipients, attachments)] = store.query(
        f"SELECT inbound_recipients, JSONLength(attachments) FROM {db}.events WHERE source = 'inbound'"
    )
    assert recipients == ["support@parse.example", "bo@shop.example", "carol@other.example"]
    assert attachments == 3
