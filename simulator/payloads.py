"""What the simulator's webhooks carry, and how they are signed. Pure.

Twilio Event Streams: a JSON array of CloudEvents. An email event's ``data`` is the Email resource at
that moment (the shape mailpulse accepts, README), so ``data.updatedAt`` is the resource's
``updatedAt``; a repeated open is a new CloudEvent carrying the unchanged resource. Operations publish
``com.twilio.comms-api.operation.processing`` and ``…operation.completed`` with ``operation_id``.

SendGrid Event Webhook: processed (QUEUED), delivered, bounce (UNDELIVERED: ``type`` bounce or blocked,
with a ``bounce_classification``), dropped (FAILED) and one ``open`` per open, with whole-second
timestamps, and the signals: ``deferred`` (attempt 1, 2, ...), ``spamreport``, ``unsubscribe``.
SendGrid has no SCHEDULED, SENT, CANCELED or INBOUND event. The X-Message-Id is the operation's, so
mailpulse names the message ``<X-Message-Id>:<recipient>`` (``sendgrid_message_id``). Bodies put
``\\r\\n`` after every event.

Signatures use ingest's own functions (``schemas.signatures``): ingest verifies what the simulator signs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from schemas.signatures import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    sign_sendgrid,
    sign_twilio,
    with_body_sha256,
)
from schemas.status import EmailStatus, OperationStatus
from simulator.model import Email, Operation, iso

Payload = dict[str, Any]
DATASCHEMA = "https://events.twilio.com/v1/schemas/com.twilio.comms-api"
_SENDGRID_EVENTS = {
    EmailStatus.QUEUED: "processed",
    EmailStatus.DELIVERED: "delivered",
    EmailStatus.UNDELIVERED: "bounce",
    EmailStatus.FAILED: "dropped",
    EmailStatus.OPENED: "open",
}
_PUBLISHED_OPERATION_TYPES = {OperationStatus.PROCESSING, OperationStatus.COMPLETED}


class WebhookFormat(StrEnum):
    TWILIO = "twilio"
    SENDGRID = "sendgrid"


def cloud_event(rng: random.Random, kind: str, source: str, at: datetime, data: Payload) -> Payload:
    return {
        "specversion": "1.0",
        "type": f"com.twilio.comms-api.{kind}",
        "source": source,
        "id": "EZ" + rng.randbytes(16).hex(),
        "dataschema": f"{DATASCHEMA}.{kind.split('.')[0]}/1",
        "datacontenttype": "application/json",
        "time": iso(at),
        "data": data,
    }


def email_cloud_event(rng: random.Random, email: Email, at: datetime) -> Payload:
    """The CloudEvent of whatever happened to ``email`` at ``at`` (a status change or an open)."""
    resource = email.resource(at)
    kind = f"email.{resource['status'].lower()}"
    return cloud_event(rng, kind, f"/v1/Emails/{email.id}", at, resource)


def operation_cloud_event(rng: random.Random, operation: Operation, resource: Payload) -> Payload | None:
    status = OperationStatus(resource["status"])
    if status not in _PUBLISHED_OPERATION_TYPES:
        return None
    at = datetime.fromisoformat(resource["updatedAt"])
    data = {"operation_id": operation.id, **resource}
    source = f"/v1/Emails/Operations/{operation.id}"
    return cloud_event(rng, f"operation.{status.value.lower()}", source, at, data)


def x_message_id(email: Email) -> str:
    """The X-Message-Id SendGrid would give the send request that made ``email``."""
    return (email.operation_id or email.id).rsplit("_", 1)[-1][:22]


def sendgrid_message_id(email: Email) -> str:
    """mailpulse's message id for ``email`` reported through SendGrid (schemas.sendgrid)."""
    return f"{x_message_id(email)}:{email.recipient.address.lower()}"


def sendgrid_event(rng: random.Random, email: Email, at: datetime) -> Payload | None:
    """The SendGrid event of what happened to ``email`` at ``at``; None when SendGrid has none."""
    current = email.current(at)
    assert current is not None
    name = _SENDGRID_EVENTS.get(current.status)
    if name is None or email.operation_id is None:
        return None
    xid = x_message_id(email)
    event: Payload = {
        "email": email.recipient.address,
        "timestamp": int(at.timestamp()),
        "event": name,
        "smtp-id": f"<{xid}@ismtpd-sim>",
        "sg_event_id": rng.randbytes(16).hex(),
        "sg_message_id": f"{xid}.recvd-sim-{email.id[-10:]}",
        **email.tags,
    }
    if name == "bounce" and email.signals.blocked:
        reason = "554 5.7.1 Service unavailable; client host blocked"
        event |= {"type": "blocked", "reason": reason, "status": "5.7.1"}
    elif name == "bounce":
        event |= {"type": "bounce", "reason": "550 5.1.1 mailbox unavailable", "status": "5.1.1"}
    if name == "bounce" and email.signals.bounce_classification:
        event["bounce_classification"] = email.signals.bounce_classification
    elif name == "dropped":
        event["reason"] = "Bounced Address"
    elif name == "delivered":
        event["response"] = "250 2.0.0 OK"
    elif name == "open":
        event["sg_machine_open"] = False
    return event


def sendgrid_signal_event(rng: random.Random, email: Email, kind: str, at: datetime) -> Payload | None:
    """The SendGrid event of a signal (``deferred``, ``spamreport``, ``unsubscribe``) of ``email`` at
    ``at``; None for received mail."""
    if email.operation_id is None:
        return None
    xid = x_message_id(email)
    event: Payload = {
        "email": email.recipient.address,
        "timestamp": int(at.timestamp()),
        "event": kind,
        "sg_event_id": rng.randbytes(16).hex(),
        "sg_message_id": f"{xid}.recvd-sim-{email.id[-10:]}",
        **email.tags,
    }
    if kind == "deferred":
        attempt = email.signals.deferrals.index(at) + 1
        event |= {
            "smtp-id": f"<{xid}@ismtpd-sim>",
            "attempt": str(attempt),
            "response": "451 4.7.650 temporarily rate limited due to IP reputation",
        }
    return event


def body(target_format: WebhookFormat, events: list[Payload]) -> bytes:
    if target_format is WebhookFormat.SENDGRID:
        return b"[" + b",".join(orjson.dumps(e) + b"\r\n" for e in events) + b"]"
    return orjson.dumps(events)


@dataclass(frozen=True, slots=True)
class Signer:
    """Signs webhook requests as the providers do, when their keys are configured."""

    twilio_auth_token: str | None = field(default=None, repr=False)
    sendgrid_key: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False)

    def sign(
        self, target_format: WebhookFormat, url: str, payload: bytes, now: float
    ) -> tuple[str, dict[str, str]]:
        """The URL to post to and the headers (``now``: real Unix time, checked by the receiver)."""
        headers = {"Content-Type": "application/json"}
        if target_format is WebhookFormat.TWILIO and self.twilio_auth_token:
            url = with_body_sha256(url, payload)
            headers[TWILIO_SIGNATURE_HEADER] = sign_twilio(url, self.twilio_auth_token)
        elif target_format is WebhookFormat.SENDGRID and self.sendgrid_key is not None:
            timestamp = str(int(now))
            headers[SENDGRID_TIMESTAMP_HEADER] = timestamp
            headers[SENDGRID_SIGNATURE_HEADER] = sign_sendgrid(self.sendgrid_key, timestamp, payload)
        return url, headers
