"""The events every measurement uses: generated webhook traffic, cut the way each measurement needs it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from adapters.publisher import encode
from schemas.event import CanonicalEvent
from schemas.sendgrid import parse_sendgrid_event
from schemas.twilio import parse_cloud_event
from simulator.traffic import Payload, generate

SENDGRID_BATCH = 100  # events per SendGrid POST, as the issue asks


@dataclass(frozen=True, slots=True)
class Workload:
    sendgrid: list[Payload]  # SendGrid events, arrival order
    twilio: list[Payload]  # Twilio CloudEvents, arrival order
    events: list[CanonicalEvent]  # all of them parsed, SendGrid then Twilio
    records: list[tuple[bytes, bytes]]  # (key, value) exactly as ingest publishes them

    def sendgrid_bodies(self) -> list[bytes]:
        """POST bodies of SENDGRID_BATCH events."""
        s = self.sendgrid
        return [orjson.dumps(s[i : i + SENDGRID_BATCH]) for i in range(0, len(s), SENDGRID_BATCH)]

    def twilio_bodies(self) -> list[bytes]:
        """One CloudEvent per POST (Twilio's callbacks carry one event each)."""
        return [orjson.dumps([e]) for e in self.twilio]


def build(events: int, seed: int = 8) -> Workload:
    """About ``events`` events (duplicates included) of realistic mixed SendGrid and Twilio traffic."""
    traffic = generate(max(1, events * 2 // 7), seed)  # the generator makes ~3.5 deliveries a message
    sendgrid = [e for batch in traffic.sendgrid_batches for e in batch]
    twilio = [e for batch in traffic.twilio_batches for e in batch]
    now = datetime.now(UTC)
    parsed = [parse_sendgrid_event(e, now) for e in sendgrid] + [parse_cloud_event(e, now) for e in twilio]
    records = [(e.message_id.encode(), encode(e)) for e in parsed]
    return Workload(sendgrid, twilio, parsed, records)
