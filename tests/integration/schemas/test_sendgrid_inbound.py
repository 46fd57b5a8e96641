"""Inbound Parse events' details in their email_events columns (real chDB)."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clickhouse import ClickHouseStore
from schemas.event import envelope_json
from schemas.inbound import Attachment, InboundDetails
from schemas.sendgrid_inbound import parse_inbound
from storage.tables import INBOUND_COLUMNS
from tests.ingest.mail import RECEIVED, post
from tests.schemas.events import inbound_values

pytestmark = [pytest.mark.clickhouse]

texts = st.none() | st.text(max_size=30)


attachments = st.builds(
    Attachment,
    part=st.text(min_size=1, max_size=12),
    filename=texts,
    content_type=texts,
    size=st.none() | st.integers(0, 30 * 1024 * 1024),
    content_id=texts,
    rejected=st.booleans(),
    reason=texts,
)


details = st.builds(
    InboundDetails,
    recipients=st.lists(st.emails(), max_size=4).map(tuple),
    subject=texts,
    spam_score=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    spf=texts,
    dkim=texts,
    attachments=st.lists(attachments, max_size=3).map(tuple),
)


_examples = itertools.count()


def stored_inbound(store: ClickHouseStore, message_id: str) -> tuple[Any, ...]:
    [row] = store.query(
        f"SELECT {', '.join(INBOUND_COLUMNS)} FROM {store.database}.events WHERE message_id = {{m:String}}",
        {"m": message_id},
    )
    return row


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(details)
def test_inbound_details_reach_their_columns(store: ClickHouseStore, inbound: InboundDetails) -> None:
    """Through the landing table's view (JSON of the nested object -> columns), real chDB."""
    message_id = f"inbound-{next(_examples)}"
    event = parse_inbound(post(), RECEIVED).model_copy(update={"inbound": inbound, "message_id": message_id})
    store.load([envelope_json(event)], message_id)
    *columns, attachments = stored_inbound(store, message_id)
    *expected, expected_attachments = inbound_values(inbound)
    assert columns == expected
    assert orjson.loads(attachments) == orjson.loads(expected_attachments)  # the same JSON value


def test_events_without_inbound_details_keep_them_absent(store: ClickHouseStore) -> None:
    event = parse_inbound(post(), RECEIVED).model_copy(update={"inbound": None})
    store.load([envelope_json(event)], "absent")
    assert stored_inbound(store, event.message_id) == ([], None, None, None, None, "")
