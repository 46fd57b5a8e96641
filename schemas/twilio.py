"""Twilio Event Streams CloudEvent -> canonical event.

Accepted shape (Twilio does not publish per-email event types, FACTS.md): a CloudEvent whose ``data``
is an Email API Email resource, for example::

    {"specversion": "1.0", "type": "com.twilio.comms-api.email.delivered", "id": "EZ…",
     "source": "/v1/Emails/comms_email_…", "time": "2026-11-23T10:00:01.250Z",
     "datacontenttype": "application/json",
     "data": {"id": "comms_email_…", "status": "DELIVERED", "updatedAt": "2026-11-23T10:00:01.250Z",
              "from": {"address": "a@x.com"}, "to": [{"address": "b@y.com"}], "tags": {"k": "v"},
              "operationId": "comms_operation_…"}}

The status comes from ``data.status``, the event time from ``data.updatedAt`` (else ``time``).
Operation events (``com.twilio.comms-api.operation.*``) are kept as kind ``operation``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.event import CanonicalEvent, Provider, Source, Tags, UtcDatetime, domain_of
from schemas.mapping import classify
from schemas.problems import InvalidEvent, Problem, problems_from
from schemas.status import EventKind

OPERATION_TYPE_PREFIX = "com.twilio.comms-api.operation."


class Address(BaseModel):
    model_config = ConfigDict(extra="allow")
    address: str = Field(min_length=3, max_length=512)
    name: str | None = None


class EmailResource(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    id: str = Field(min_length=1, max_length=256)
    status: str = Field(min_length=1, max_length=64)
    updated_at: UtcDatetime | None = Field(default=None, alias="updatedAt")
    sender: Address | str | None = Field(default=None, alias="from")
    to: list[Address | str] = Field(default_factory=list)
    tags: Tags = Field(default_factory=dict)
    operation_id: str | None = Field(default=None, alias="operationId")


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    specversion: str = Field(pattern=r"^1\.")
    id: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1, max_length=128)
    time: UtcDatetime | None = None
    data: dict[str, Any]


def _address(value: Address | str | None) -> str | None:
    if value is None:
        return None
    return (value if isinstance(value, str) else value.address).strip().lower()


def parse_cloud_event(raw: Any, received_at: datetime) -> CanonicalEvent:
    """Validate and map one CloudEvent. Raises InvalidEvent listing every problem."""
    if not isinstance(raw, dict):
        raise InvalidEvent([Problem("(event)", "must be a JSON object")])
    problems: list[Problem] = []
    ce: CloudEvent | None = None
    email: EmailResource | None = None
    try:
        ce = CloudEvent.model_validate(raw)
    except ValidationError as exc:
        problems += problems_from(exc)
    is_operation = str(raw.get("type", "")).startswith(OPERATION_TYPE_PREFIX)
    data = raw.get("data")
    if is_operation:
        op_id = _operation_id(data)
        if op_id is None:
            problems.append(Problem("data.operation_id", "operation events need an operation id"))
        if raw.get("time") is None:
            problems.append(Problem("time", "operation events need an event time"))
    elif isinstance(data, dict):
        try:
            email = EmailResource.model_validate(data)
        except ValidationError as exc:
            problems += problems_from(exc, "data.")
        if data.get("updatedAt") is None and raw.get("time") is None:
            problems.append(Problem("data.updatedAt", "an event time (data.updatedAt or time) is required"))
    if problems:
        raise InvalidEvent(problems)
    assert ce is not None
    if is_operation:
        return _operation_event(ce, received_at)
    assert email is not None
    occurred_at = email.updated_at or ce.time
    assert occurred_at is not None
    kind, status = classify(Provider.TWILIO, email.status)
    recipient = _address(email.to[0]) if email.to else None
    sender = _address(email.sender)
    try:
        return CanonicalEvent(
            event_id=ce.id,
            message_id=email.id,
            operation_id=email.operation_id,
            kind=kind,
            status=status,
            raw_type=email.status,
            occurred_at=occurred_at,
            received_at=received_at,
            source=Source.WEBHOOK,
            provider=Provider.TWILIO,
            recipient=recipient,
            recipient_domain=domain_of(recipient),
            sender=sender,
            sender_domain=domain_of(sender),
            tags=email.tags,
        )
    except ValidationError as exc:
        raise InvalidEvent(problems_from(exc, "data.")) from None


def _operation_id(data: object) -> str | None:
    if not isinstance(data, dict):
        return None
    op_id = data.get("operation_id") or data.get("operationId") or data.get("id")
    return op_id if isinstance(op_id, str) and op_id else None


def _operation_event(ce: CloudEvent, received_at: datetime) -> CanonicalEvent:
    op_id = _operation_id(ce.data)
    assert op_id is not None and ce.time is not None
    return CanonicalEvent(
        event_id=ce.id,
        message_id=op_id,
        operation_id=op_id,
        kind=EventKind.OPERATION,
        raw_type=ce.type[:128],
        occurred_at=ce.time,
        received_at=received_at,
        source=Source.WEBHOOK,
        provider=Provider.TWILIO,
    )
