"""Sample provider webhook events of one message (SendGrid Event Webhook objects, Twilio CloudEvents),
shared by the ingest, storage and pipeline tests."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = 1_763_900_000  # whole Unix seconds, as SendGrid sends them
XID = "W86EgYT6SQKk0lRflfLRsA"
SG_MESSAGE_ID = f"{XID}.filterdrecv-p3las1-5bf99c48d-8k9k5-18-5F7B5D24-59.0"


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


def sendgrid_event(event: str, offset_s: int, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "email": "Ana@Example.com",
        "timestamp": T0 + offset_s,
        "event": event,
        "smtp-id": f"<{XID}@ismtpd-0001>",
        "sg_event_id": f"ZXZlbnQ{n}",
        "sg_message_id": SG_MESSAGE_ID,
        "category": ["welcome"],
        **extra,
    }


def one_message_batch() -> list[dict[str, Any]]:
    """Six distinct events of one message, in reverse order, with an exact and a semantic duplicate."""
    events = [
        sendgrid_event("processed", 0, 1),
        sendgrid_event("deferred", 5, 2, attempt="1", response="450 try later"),
        sendgrid_event("delivered", 30, 3, response="250 OK"),
        sendgrid_event("open", 100, 4, sg_machine_open=False, useragent="Mozilla"),
        sendgrid_event("open", 200, 5, sg_machine_open=True),
        sendgrid_event("click", 210, 6, url="https://example.com/a"),
    ]
    resent = copy.deepcopy(events[2])
    resent["sg_event_id"] = "ZGlmZmVyZW50LWlk"  # SendGrid resends one event under a new id
    return [*reversed(events), copy.deepcopy(events[0]), resent]


def cloud_event(status: str, ms: int, n: int) -> dict[str, Any]:
    updated = (at(0) + timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")
    return {
        "specversion": "1.0",
        "type": f"com.twilio.comms-api.email.{status.lower()}",
        "source": "/v1/Emails/comms_email_01",
        "id": f"EZ{n:032d}",
        "time": updated,
        "datacontenttype": "application/json",
        "data": {
            "id": "comms_email_01",
            "status": status,
            "updatedAt": updated,
            "from": {"address": "news@Shop.example", "name": "Shop"},
            "to": [{"address": "bo@mail.example"}],
            "tags": {"campaign": "spring-2026"},
            "operationId": "comms_operation_01",
        },
    }
