"""Twilio Event Streams CloudEvent -> canonical event.

Accepted shape (Twilio does not publish per-email event types; docs/providers.md): a CloudEvent whose ``data``
is an Email API Email resource, for example::

    {"specversion": "1.0", "type": "com.twilio.comms-api.email.delivered", "id": "EZ…",
     "source": "/v1/Emails/comms_email_…", "time": "2026-11-23T10:00:01.250Z",
     "datacontenttype": "application/json",
     "data": {"id": "comms_email_…", "status": "DELIVERED", "updatedAt": "2026-11-23T10:00:01.250Z",
              "from": {"address": "a@x.com"}, "to": [{"address": "b@y.com"}], "tags": {"k": "v"},
              "operationId": "comms_operation_…"}}

The status comes from ``data.status``, the event time from ``data.updatedAt`` (else ``time``).
Operation events (``com.twilio.comms-api.operation.*``) are kept as kind ``operation``.

The poller reads the same resources from the Email API (``parse_email_resource``,
``parse_operation_resource``): same status, same event time (``updatedAt``), so a webhook and a poll of
one status share a dedupe key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.event import CanonicalEvent, Provider, Source, Tags, UtcDatetime, derived_event_id, domain_of
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
    return _email_event(email, ce.id, occurred_at, received_at, Source.WEBHOOK, "data.")


def _email_event(
    email: EmailResource,
    event_id: str,
    occurred_at: datetime,
    received_at: datetime,
    source: Source,
    prefix: str = "",
) -> CanonicalEvent:
    kind, status = classify(Provider.TWILIO, email.status)
    recipient = _address(email.to[0]) if email.to else None
    sender = _address(email.sender)
    try:
        return CanonicalEvent(
            event_id=event_id,
            message_id=email.id,
            operation_id=email.operation_id,
            kind=kind,
            status=status,
            raw_type=email.status,
            occurred_at=occurred_at,
            received_at=received_at,
            source=source,
            provider=Provider.TWILIO,
            recipient=recipient,
            recipient_domain=domain_of(recipient),
            sender=sender,
            sender_domain=domain_of(sender),
            tags=email.tags,
        )
    except ValidationError as exc:
        raise InvalidEvent(problems_from(exc, prefix)) from None


def parse_email_resource(raw: Any, received_at: datetime, source: Source = Source.POLLER) -> CanonicalEvent:
    """An Email resource read from the Email API (the poller) -> its current status as an event.

    The event time is the resource's ``updatedAt`` (required here), so the poller's event for a
    status and the webhook's CloudEvent for the same status share a dedupe key; the event id is
    derived from (message id, status, updatedAt), stable across polls. Raises InvalidEvent."""
    if not isinstance(raw, dict):
        raise InvalidEvent([Problem("(resource)", "must be a JSON object")])
    try:
        email = EmailResource.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(problems_from(exc)) from None
    if email.updated_at is None:
        raise InvalidEvent([Problem("updatedAt", "an Email resource needs updatedAt")])
    event_id = derived_event_id(Provider.TWILIO, email.id, email.status, email.updated_at)
    return _email_event(email, event_id, email.updated_at, received_at, source)


class OperationResource(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    id: str = Field(min_length=1, max_length=256)
    status: str = Field(min_length=1, max_length=64)
    updated_at: UtcDatetime = Field(alias="updatedAt")


def operation_type(status: str) -> str:
    """The Event Streams type of an operation status (``com.twilio.comms-api.operation.completed``)."""
    return f"{OPERATION_TYPE_PREFIX}{status.lower()}"[:128]


def parse_operation_resource(
    raw: Any, received_at: datetime, source: Source = Source.POLLER
) -> CanonicalEvent:
    """An Operation resource read from the Email API -> an operation event carrying the same type and
    time (``updatedAt``) as the Event Streams CloudEvent of that status. Raises InvalidEvent."""
    if not isinstance(raw, dict):
        raise InvalidEvent([Problem("(resource)", "must be a JSON object")])
    try:
        operation = OperationResource.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(problems_from(exc)) from None
    raw_type = operation_type(operation.status)
    return CanonicalEvent(
        event_id=derived_event_id(Provider.TWILIO, operation.id, raw_type, operation.updated_at),
        message_id=operation.id,
        operation_id=operation.id,
        kind=EventKind.OPERATION,
        raw_type=raw_type,
        occurred_at=operation.updated_at,
        received_at=received_at,
        source=source,
        provider=Provider.TWILIO,
    )


def _operation_id(data: object) -> str | None:
    if not isinstance(data, dict):
        return None
    op_id = data.get("operation_id") or data.get("operationId") or data.get("id")
    return op_id if isinstance(op_id, str) and op_id else None


def _operation_event(ce: CloudEvent, received_at: datetime) -> CanonicalEvent:
    op_id = _operation_id(ce.data)
    assert op_id is not None and ce.time is not None
    try:
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
    except ValidationError as exc:  # an operation id longer than a message id may be
        raise InvalidEvent(problems_from(exc, "data.")) from None
