"""The envelope v2 bytes ingest publishes (orjson from the event's fields) are pydantic's own encoding,
byte for byte, and decode to the same event and dedupe key: fixture, generated and received-mail
events. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.publisher import encode
from schemas.event import CanonicalEvent, Envelope
from schemas.sendgrid import parse_sendgrid_event
from schemas.sendgrid_inbound import InboundPost, UploadedFile, parse_inbound
from schemas.twilio import parse_cloud_event
from tests.ingest.mail import ATTACHMENTS, inbound_fields
from tests.schemas.events import canonical_events

FIXTURES = Path(__file__).parent.parent / "fixtures"
RECEIVED = datetime(2026, 11, 23, 10, 0, 5, 123000, tzinfo=UTC)


def _fixture_events() -> list[CanonicalEvent]:
    sendgrid = orjson.loads((FIXTURES / "sendgrid_events.json").read_bytes())
    twilio = orjson.loads((FIXTURES / "twilio_cloudevents.json").read_bytes())
    files = [UploadedFile(part, name, ctype, size) for part, name, ctype, size, _ in ATTACHMENTS]
    mail = parse_inbound(InboundPost(inbound_fields(), files), RECEIVED)
    return [
        *(parse_sendgrid_event(raw, RECEIVED) for raw in sendgrid),
        *(parse_cloud_event(raw, RECEIVED) for raw in twilio),
        mail,
    ]


def _check(event: CanonicalEvent) -> None:
    value = encode(event)
    assert value == Envelope.of(event).to_json()  # pydantic's encoding, byte for byte
    back = Envelope.model_validate_json(value)
    assert back.event == event
    assert back.dedupe_key == event.dedupe_key
    fields = orjson.loads(value)
    assert list(fields)[:2] == ["v", "dedupe_key"] and fields["v"] == 2
    assert list(fields)[2:] == list(CanonicalEvent.model_fields)  # flat, in the model's order


def test_fixture_and_inbound_events_round_trip() -> None:
    events = _fixture_events()
    assert any(e.inbound is not None and e.inbound.attachments for e in events)
    for event in events:
        event.dedupe_key  # noqa: B018 (cached in __dict__ first: it must not leak into the JSON)
        _check(event)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(canonical_events(), st.text(max_size=20), st.dictionaries(st.text(max_size=5), st.text(max_size=5)))
def test_generated_events_round_trip(event: CanonicalEvent, reason: str, custom: dict[str, str]) -> None:
    _check(event.model_copy(update={"reason": reason or None, "custom_args": custom}))
